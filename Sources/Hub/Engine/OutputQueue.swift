import CLinux
import Glibc
import Protocol

// A connection's unsent output: byte runs and an offset into the first one. Flushed with send
// for a lone run, else with one send of the leading runs copied together or a writev of at most
// `EngineLimits.iovecsPerWritev` runs per call; what the kernel does not take stays queued (the
// loop then waits for EPOLLOUT). The byte and frame counts are what backpressure limits
// look at.
//
// A run is either shared (a push encoded once for every subscriber) or the queue's own: the
// connection's replies and echoes are written one after another into the last run while it is
// the queue's own and has room, so a turn's answers cost one allocation and one iovec, not one
// of each per frame.
struct OutputQueue {
    private var chunks = FIFO<Bytes>(keepingCapacity: EngineLimits.outputListCapacity)
    private var headOffset = 0      // bytes of the first chunk already sent
    private(set) var bytes = 0
    /// Frames not yet fully sent (a run of the queue's own holds several).
    var frames: Int { Int(frameCount) }
    // The two 32-bit counts share 8 bytes: every idle connection holds a queue.
    private var frameCount: Int32 = 0
    /// Bytes free at the end of the last run when it is the queue's own (0 or more); -1 when
    /// the last run is shared, or there is none.
    private var ownRoom: Int32 = -1
    /// Something was queued since the last `releaseIfIdle`.
    private var queuedSinceIdleCheck = false

    var isEmpty: Bool { bytes == 0 }

    /// Queues a shared run (never written into afterwards).
    mutating func append(_ chunk: Bytes) {
        guard chunk.count > 0 else { return }
        chunks.append(chunk)
        ownRoom = -1
        queuedSinceIdleCheck = true
        bytes += chunk.count
        frameCount += Int32(chunk.frames)
    }

    /// Queues an unmasked frame for this connection alone: after the last run when it is the
    /// queue's own and has room, otherwise in a new run of its own. That run is the frame's own
    /// size unless the last run is already the queue's own (answers are coming several a
    /// turn): the usual lone answer (a subscribe's reply to a connection that then idles) then
    /// leaves no larger block behind in the heap.
    mutating func appendOwnFrame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer, rsv1: Bool = false) {
        let size = Bytes.frameSize(payload.count)
        if size <= ownRoom {
            chunks[chunks.count - 1].appendFrame(count: size) { Bytes.writeFrame(opcode, payload, rsv1: rsv1, into: $0) }
            ownRoom -= Int32(size)
        } else {
            let capacity = ownRoom >= 0 ? max(size, EngineLimits.ownRunCapacity) : size
            let run = Bytes.make(capacity: capacity, count: size) {
                Bytes.writeFrame(opcode, payload, rsv1: rsv1, into: $0)
            }
            chunks.append(run)
            ownRoom = Int32(clamping: run.capacity - size)
        }
        queuedSinceIdleCheck = true
        bytes += size
        frameCount += 1
    }

    mutating func removeAll() {
        chunks.removeAll()
        headOffset = 0
        bytes = 0
        frameCount = 0
        ownRoom = -1
    }

    /// Called about once a second (the loop's sweep): when nothing was queued since the last
    /// call and nothing waits, the list's array goes back to the allocator. An idle connection
    /// then holds no output storage, and a busy one never reallocates for it per message
    /// (at most once per idle spell).
    mutating func releaseIfIdle() {
        defer { queuedSinceIdleCheck = false }
        guard !queuedSinceIdleCheck else { return }
        chunks.releaseStorageIfEmpty()
    }

    /// Byte runs queued (for tests: a turn's own frames share runs).
    var runs: Int { chunks.count }

    /// Slots the frame list holds (for tests of idle memory).
    var listCapacity: Int { chunks.capacity }

    enum FlushResult { case drained, partial, failed(Int32) }

    /// Writes as much as the socket takes, up to `budget` bytes. With `gather`, several small
    /// runs (a subscriber's waiting pushes, a window of echo replies) are copied into it and
    /// sent in one piece: the kernel's cost per iovec is more than a copy of a few hundred bytes
    /// (measured: echo at window 16, fan-out to 1,000 with ~50 frames a call).
    mutating func flush(fd: Int32, budget: Int, gather: UnsafeMutableRawBufferPointer? = nil) -> FlushResult {
        var written = 0
        while bytes > 0 && written < budget {
            let n: Int
            if chunks.count == 1 {
                // One run (an echo, a reply, a push to an idle reader): send(2), not a writev of
                // one iovec, whose file-layer steps cost ~5 % of the loop at echo rates.
                n = send(fd, chunks[0].base + headOffset, chunks[0].count - headOffset, Int32(MSG_NOSIGNAL))
            } else if let gather, let gathered = sendGathered(fd: fd, into: gather) {
                n = gathered
            } else {
                n = writeVector(fd: fd)
            }
            if n < 0 {
                let e = montrose_errno()
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return .partial }
                return .failed(e)
            }
            consume(n)
            written += n
        }
        return bytes == 0 ? .drained : .partial
    }

    /// The leading runs (at most `EngineLimits.iovecsPerWritev`) in one writev(2).
    private func writeVector(fd: Int32) -> Int {
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: EngineLimits.iovecsPerWritev) { iov -> Int in
            var count = 0
            while count < chunks.count && count < EngineLimits.iovecsPerWritev {
                let c = chunks[count]
                let skip = count == 0 ? headOffset : 0
                iov[count] = iovec(iov_base: c.base + skip, iov_len: c.count - skip)
                count += 1
            }
            return writev(fd, iov.baseAddress, Int32(count))
        }
    }

    /// Copies the leading runs that fit whole into `buffer` and sends them with one call; nil
    /// when fewer than two fit (the iovec path is then as good).
    private func sendGathered(fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        guard let dst = buffer.baseAddress else { return nil }
        var used = 0
        var runs = 0
        var i = 0
        while i < chunks.count {
            let c = chunks[i]
            let skip = i == 0 ? headOffset : 0
            let n = c.count - skip
            if used + n > buffer.count { break }
            (dst + used).copyMemory(from: c.base + skip, byteCount: n)
            used += n
            runs += 1
            i += 1
        }
        guard runs >= 2 else { return nil }
        return send(fd, dst, used, Int32(MSG_NOSIGNAL))
    }

    private mutating func consume(_ count: Int) {
        var n = count
        bytes -= n
        while n > 0 {
            let left = chunks[0].count - headOffset
            if n >= left {
                n -= left
                frameCount -= Int32(chunks[0].frames)
                chunks.removeFirst(1)
                headOffset = 0
                if chunks.isEmpty { ownRoom = -1 }
            } else {
                headOffset += n
                n = 0
            }
        }
    }
}

extension OutputQueue {
    /// Drops every chunk the socket has not started on (a partly sent frame is kept whole,
    /// so the stream stays well framed).
    mutating func dropUnstarted() {
        let keep = headOffset > 0 ? 1 : 0
        guard chunks.count > keep else { return }
        var dropped = 0
        for i in keep..<chunks.count {
            dropped += chunks[i].count
            frameCount -= Int32(chunks[i].frames)
        }
        chunks.truncate(to: keep)
        bytes -= dropped
        ownRoom = -1
    }
}
