import CLinux
import Glibc
import Protocol

// A Redis connection's encoded commands not yet taken by the kernel. Commands are appended
// to one byte array; a send that the kernel takes only partly leaves an offset into it. The
// sent prefix is dropped when the array empties, and also when it is at least
// `compactAfterBytes` and half the array: under load that never lets the array empty, what
// it holds stays within twice the unsent bytes (plus the threshold) instead of growing.
struct RedisOutput {
    static let compactAfterBytes = 64 << 10

    private(set) var buffer: [UInt8] = []
    private var sent = 0

    /// Bytes queued and not yet sent (what backlog limits look at).
    var unsent: Int { buffer.count - sent }
    /// Bytes the array holds, sent prefix included.
    var held: Int { buffer.count }

    mutating func append(_ args: [[UInt8]]) { RESPCommand.encode(args, into: &buffer) }
    mutating func append(_ args: [String]) { RESPCommand.encode(args, into: &buffer) }

    /// PUBLISH `prefix + channel` `message`, written straight into the buffer.
    mutating func appendPublish(prefix: [UInt8], channel: String, message: [UInt8]) {
        buffer.append(contentsOf: Self.publishHead)
        appendBulkHeader(prefix.count + channel.utf8.count)
        buffer.append(contentsOf: prefix)
        buffer.append(contentsOf: channel.utf8)
        buffer.append(contentsOf: Self.crlf)
        appendBulkHeader(message.count)
        buffer.append(contentsOf: message)
        buffer.append(contentsOf: Self.crlf)
    }

    private static let publishHead = Array("*3\r\n$7\r\nPUBLISH\r\n".utf8)
    private static let crlf: [UInt8] = [13, 10]

    private mutating func appendBulkHeader(_ length: Int) {
        buffer.append(UInt8(ascii: "$"))
        buffer.append(contentsOf: String(length).utf8)
        buffer.append(contentsOf: Self.crlf)
    }

    mutating func removeAll() {
        buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
        sent = 0
    }

    enum FlushResult: Equatable { case drained, partial, failed(Int32) }

    /// Sends as much as the socket takes.
    mutating func flush(fd: Int32) -> FlushResult {
        while sent < buffer.count {
            let n = buffer.withUnsafeBytes { b in
                Glibc.send(fd, b.baseAddress! + sent, b.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                sent += n
                continue
            }
            let e = montrose_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                dropSentPrefixIfLarge()
                return .partial
            }
            return .failed(e)
        }
        removeAll()
        return .drained
    }

    private mutating func dropSentPrefixIfLarge() {
        guard sent >= Self.compactAfterBytes, sent * 2 >= buffer.count else { return }
        buffer.removeSubrange(0..<sent)
        sent = 0
    }
}
