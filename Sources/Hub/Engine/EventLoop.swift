import Core
import CLinux
import Foundation
import Glibc
import Protocol
import Synchronization

// One event loop: a thread that owns an epoll instance, its own listening sockets (one per
// listener, SO_REUSEPORT), every connection it accepted, and a mailbox (an eventfd) through
// which other threads hand it work. Nothing else touches its connections.
//
// Each iteration: wait for events (at most until the next sweep or loop timer), dispatch them
// (connections, mailbox jobs, foreign sockets: `LoopSocket`), resume work an earlier turn's
// budget cut short (a large fan-out: `LoopRegistry`), fire due timers (`LoopTimers`),
// sweep connections about once a second, flush every connection that queued output (so many
// frames queued in one batch leave in one writev), then release connections closed during
// the batch.
//
// `@unchecked Sendable`: only `execute` (the mailbox) and the counters are used from other
// threads; everything else is confined to the loop thread by construction.
final class EventLoop: @unchecked Sendable {
    let index: Int
    private let epfd: Int32
    private let wakeFD: Int32
    private let mailbox = Locked<[@Sendable (EventLoop) -> Void]>([])
    private let wakePending = Atomic<Bool>(false)
    let shared: EngineCounters
    /// The loop-wide numbers (the connections' own limits come with their listener).
    let limits: EngineLimits

    private(set) var now: Int64
    let readBuffer: UnsafeMutableRawBufferPointer
    let plainBuffer: UnsafeMutableRawBufferPointer
    /// Where a connection's small queued frames are copied together for one send (see
    /// `OutputQueue.flush`).
    let gatherBuffer: UnsafeMutableRawBufferPointer
    private var eventScratch: [WebSocketEvent] = []
    /// Where answers are written before they are framed into a connection's queue (see
    /// `withAnswerWriter`): one buffer a loop, so an answer allocates nothing once it has grown.
    private var answerWriter = JSONWriter(capacity: 0)
    /// A buffer that grew past this (a long page of history) is not kept.
    private static let answerWriterKeep = 64 << 10

    private var slots: [Connection?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int32] = []
    private var listenSockets: [ListenSocket] = []
    /// Spare buffer swapped with the mailbox, so taking it allocates nothing (copying out of a
    /// shared array would allocate a fresh one every turn).
    private var spareJobs: [@Sendable (EventLoop) -> Void] = []
    /// What mailbox jobs left for the end of the drain (`atEndOfMailbox`), and its spare.
    private var drainEnd: [() -> Void] = []
    private var spareDrainEnd: [() -> Void] = []
    /// Work a turn's budget cut short, resumed in the next turn after its events
    /// (`resumeNextTurn`), and the list being run.
    private var resumptions: [() -> Void] = []
    private var resuming: [() -> Void] = []
    /// When each connection writes (see `WriteScheduler`).
    let writes: WriteScheduler
    private var retired: [Connection] = []
    /// Slow consumers' cuts and expired closes, spread over time (see `CloseScheduler`).
    let closes: CloseScheduler
    private var nextSweep: Int64 = 0
    /// Sockets the loop drives for other owners (a Redis client); see `LoopSocket`.
    private var foreign = ForeignSockets()
    /// One-shot timers with millisecond deadlines; see `LoopTimers`.
    private var timers = LoopTimers()
    private(set) var isShuttingDown = false
    private var shutdownDeadline: Int64 = 0
    private let finished = DispatchSemaphore(value: 0)

    /// Connections this loop owns (read by the loop; mirrored into `shared` for others).
    private(set) var connectionCount = 0
    /// Connections this loop has accepted since start (read from any thread).
    let acceptedTotal = Atomic<Int>(0)

    /// What an epoll event's 64-bit token names: the mailbox, a listening socket (tag bit and
    /// its index in the low bits), a foreign socket (tag bit, then generation and slot), or a
    /// connection (generation in the high half, slot in the low). Generations stay within
    /// `SlotGeneration.bits`, below the tag bits.
    private enum Token {
        static let wake: UInt64 = 1 << 63
        static let listenerTag: UInt64 = 1 << 62
        static let foreignTag: UInt64 = 1 << 61
        static let otherTags: UInt64 = listenerTag | foreignTag
        static let listenerIndexMask: UInt64 = 0xFFFF
        static let slotMask: UInt64 = 0xFFFF_FFFF
        static let generationShift: UInt64 = 32
    }

    init(index: Int, counters: EngineCounters, limits: EngineLimits = EngineLimits()) throws {
        self.index = index
        self.shared = counters
        self.limits = limits
        writes = WriteScheduler(limits: limits)
        closes = CloseScheduler(limits: limits)
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw SocketError(what: "epoll_create1", errno: montrose_errno()) }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw SocketError(what: "eventfd", errno: montrose_errno()) }
        now = monotonicMillis()
        readBuffer = .allocate(byteCount: limits.loopBufferBytes, alignment: 16)
        plainBuffer = .allocate(byteCount: limits.loopBufferBytes, alignment: 16)
        gatherBuffer = .allocate(byteCount: limits.loopBufferBytes, alignment: 16)
        addInterest(wakeFD, token: Token.wake, events: EPOLLIN.rawValue)
    }

    /// Safe: the loop's thread holds the loop until `run()` returns, so this runs after it.
    deinit {
        for s in listenSockets { close(s.fd) }
        close(wakeFD)
        close(epfd)
        readBuffer.deallocate()
        plainBuffer.deallocate()
        gatherBuffer.deallocate()
    }

    /// Binds this loop's socket for `listener` (called before the loop starts).
    func add(_ listener: Listener) throws {
        let fd = try listener.makeSocket()
        listenSockets.append(ListenSocket(fd: fd, listener: listener))
        addInterest(fd, token: Token.listenerTag | UInt64(listenSockets.count - 1), events: EPOLLIN.rawValue)
    }

    // MARK: cross-thread

    /// Runs `job` on this loop's thread, soon. Safe from any thread.
    func execute(_ job: @escaping @Sendable (EventLoop) -> Void) {
        mailbox.withLock { $0.append(job) }
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    private func runMailbox() {
        var counter: UInt64 = 0
        _ = read(wakeFD, &counter, 8)
        // Cleared before taking the jobs: a job added after the take wakes us again.
        wakePending.store(false, ordering: .sequentiallyConsistent)
        var jobs = spareJobs
        spareJobs = []
        mailbox.withLock { swap(&$0, &jobs) }
        for job in jobs { job(self) }
        jobs.removeAll(keepingCapacity: true)
        spareJobs = jobs
        while !drainEnd.isEmpty {
            var work = spareDrainEnd
            spareDrainEnd = []
            swap(&drainEnd, &work)
            for body in work { body() }
            work.removeAll(keepingCapacity: true)
            spareDrainEnd = work
        }
    }

    /// Runs `body` once the mailbox jobs taken with the current one have all run (on the loop's
    /// thread, from a mailbox job). Work that many jobs add to is done once for all of them.
    func atEndOfMailbox(_ body: @escaping () -> Void) {
        drainEnd.append(body)
    }

    /// Runs `body` in the next turn, after that turn's events (on the loop's thread): work cut
    /// short by a turn's budget goes on once the input that waited meanwhile was read.
    func resumeNextTurn(_ body: @escaping () -> Void) {
        resumptions.append(body)
    }

    /// The live connection with this id, if it is still the same one.
    func connection(_ id: ConnectionID) -> Connection? {
        guard id.loop == index, Int(id.slot) < slots.count, let c = slots[Int(id.slot)],
              c.id.generation == id.generation, c.phase != .closed else { return nil }
        return c
    }

    /// Every connection not closed, in slot order (on the loop's thread; for tests).
    var openConnections: [Connection] { slots.compactMap { c in c.flatMap { $0.phase != .closed ? $0 : nil } } }

    // MARK: running

    func start() {
        startThread(named: "loop-\(index)") { [self] in
            self.run()
            self.finished.signal()
        }
    }

    func waitUntilFinished() { finished.wait() }

    /// False when the loop was still running at `deadline`.
    func waitUntilFinished(deadline: DispatchTime) -> Bool { finished.wait(timeout: deadline) == .success }

    private func run() {
        let capacity = limits.epollEventsPerWait
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        nextSweep = now + limits.sweepIntervalMs
        while true {
            let busy = writes.hasWork || !resumptions.isEmpty || closes.hasDue(now: now, unlimited: isShuttingDown)
            // Cuts or closes waiting for their rate: wake within a millisecond for the next ones.
            let waiting = closes.isWaiting
            var timeout = busy ? 0 : waiting ? limits.rateLimitedWaitMs : Int32(max(0, min(limits.sweepIntervalMs, nextSweep - now)))
            if timeout > 0, let next = timers.nextDeadline {
                timeout = Int32(max(0, min(Int64(timeout), next - monotonicMillis())))
            }
            let n = epoll_wait(epfd, events, Int32(capacity), timeout)
            now = monotonicMillis()
            // Taken before the events: what they resume again waits for the next turn.
            swap(&resumptions, &resuming)
            if n > 0 {
                for i in 0..<Int(n) { dispatch(events[i]) }
            }
            if !resuming.isEmpty {
                for body in resuming { body() }
                resuming.removeAll(keepingCapacity: true)
            }
            if timers.nextDeadline != nil { fireTimers() }
            if now >= nextSweep {
                sweep()
                nextSweep = now + limits.sweepIntervalMs
            }
            writes.flushPending()
            if closes.hasCuts {
                closes.cutSlowConsumers(now: now, unlimited: isShuttingDown)
                writes.flushPending()
            }
            if closes.hasExpiries { closes.closeExpired(now: now, unlimited: isShuttingDown) }
            reap()
            if isShuttingDown {
                if connectionCount == 0 { break }
                if now >= shutdownDeadline {
                    for case let c? in slots { c.terminate() }
                    reap()
                    break
                }
            }
        }
    }

    private func dispatch(_ event: epoll_event) {
        let token = event.data.u64
        let mask = event.events
        if token == Token.wake {
            runMailbox()
            return
        }
        // One test on the connection path for both rarer kinds.
        if token & Token.otherTags != 0 {
            if token & Token.listenerTag != 0 {
                acceptConnections(Int(token & Token.listenerIndexMask))
            } else {
                dispatchForeign(Self.foreignID(token), events: mask)
            }
            return
        }
        let slot = Int(token & Token.slotMask)
        let generation = UInt32(truncatingIfNeeded: token >> Token.generationShift)
        guard slot < slots.count, let c = slots[slot], c.id.generation == generation, c.phase != .closed else {
            return // stale: the connection was closed earlier in this batch
        }
        let errorBits = EPOLLERR.rawValue | EPOLLHUP.rawValue
        // Errors and hang-ups are handled as readable and writable, so the normal paths see them.
        if mask & EPOLLOUT.rawValue != 0 && c.flushMark.polling { c.peerMadeRoom() }
        if mask & (EPOLLIN.rawValue | errorBits) != 0 { c.onReadable() }
        if c.phase != .closed && mask & (EPOLLOUT.rawValue | errorBits) != 0 && c.flushMark.polling { writes.write(c) }
    }

    private func acceptConnections(_ which: Int) {
        let listenFD = listenSockets[which].fd, listener = listenSockets[which].listener
        for _ in 0..<limits.acceptsPerWake {
            switch Socket.accept(listenFD) {
            case .success(nil):
                return
            case .success(let accepted?):
                if shared.connections.load(ordering: .relaxed) >= listener.limits.maxConnections || isShuttingDown {
                    Log.info("limit_hit", ["limit": "max_connections", "peer": accepted.peer.description])
                    close(accepted.fd)
                    continue
                }
                listenSockets[which].configure(accepted.fd)
                register(fd: accepted.fd, peer: accepted.peer, listener: listener)
            case .failure(let error):
                // Out of file descriptors: stop accepting until the next sweep instead of
                // spinning on a listening socket that stays readable.
                Log.error("accept_failed", ["listener": listener.name, "reason": error.description])
                if error.errno == EMFILE || error.errno == ENFILE || error.errno == ENOBUFS || error.errno == ENOMEM {
                    epoll_ctl(epfd, EPOLL_CTL_DEL, listenFD, nil)
                    listenSockets[which].active = false
                }
                return
            }
        }
    }

    /// A listening socket of this loop, and whether the sockets it accepts inherit its options.
    private struct ListenSocket {
        let fd: Int32
        let listener: Listener
        var active = true
        /// nil until the first accepted socket was checked.
        var optionsCopied: Bool?

        mutating func configure(_ accepted: Int32) {
            if optionsCopied == nil {
                optionsCopied = listener.acceptedSocketOptions.copied(from: fd, to: accepted)
                if optionsCopied == false {
                    Log.info("socket_options_not_inherited", ["listener": listener.name, "effect": "set on every accepted socket"])
                }
            }
            if optionsCopied == false { listener.acceptedSocketOptions.apply(to: accepted) }
        }
    }

    /// Lends the loop's answer buffer, emptied, to `body`. Taken out while lent: an answer
    /// written inside another gets a buffer of its own.
    func withAnswerWriter(_ body: (inout JSONWriter) -> Void) {
        var w = answerWriter
        answerWriter = JSONWriter(capacity: 0)
        if w.capacity == 0 { w = JSONWriter(capacity: 128) } else { w.reset() } // 0: the first, or one inside another
        body(&w)
        if w.capacity <= Self.answerWriterKeep { answerWriter = w }
    }

    private func register(fd: Int32, peer: PeerAddress, listener: Listener) {
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = Int32(slots.count)
            slots.append(nil)
            generations.append(1)
        }
        let id = ConnectionID(loop: index, slot: slot, generation: generations[Int(slot)])
        let c = Connection(id: id, fd: fd, loop: self, listener: listener, peer: peer, now: now)
        slots[Int(slot)] = c
        connectionCount += 1
        shared.connections.add(1, ordering: .relaxed)
        acceptedTotal.add(1, ordering: .relaxed)
        addInterest(fd, token: Self.token(id), events: EPOLLIN.rawValue)
    }

    private static func token(_ id: ConnectionID) -> UInt64 {
        UInt64(id.generation) << Token.generationShift | UInt64(UInt32(bitPattern: id.slot))
    }

    private static func token(_ id: LoopSocketID) -> UInt64 {
        Token.foreignTag | UInt64(id.generation) << Token.generationShift | UInt64(UInt32(bitPattern: id.slot))
    }

    private static func foreignID(_ token: UInt64) -> LoopSocketID {
        LoopSocketID(slot: Int32(bitPattern: UInt32(truncatingIfNeeded: token & Token.slotMask)),
                     generation: UInt32(truncatingIfNeeded: (token & ~Token.otherTags) >> Token.generationShift))
    }

    private func addInterest(_ fd: Int32, token: UInt64, events: UInt32) {
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = token
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
    }

    func setWriteInterest(_ c: Connection, _ on: Bool) {
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue | (on ? EPOLLOUT.rawValue : 0)
        ev.data.u64 = Self.token(c.id)
        epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev)
        writes.setPolling(c, on)
    }

    func retire(_ c: Connection) { retired.append(c) }

    // MARK: foreign sockets and timers (loop thread only)

    /// Errors go to `onError` alone; a hang-up is input (the read sees the end). The slot is
    /// checked again between callbacks, since the first may have unregistered the socket.
    private func dispatchForeign(_ id: LoopSocketID, events: UInt32) {
        guard let s = foreign.socket(id) else { return }
        if events & EPOLLERR.rawValue != 0 {
            s.onError()
            return
        }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue) != 0 { s.onReadable() }
        if events & EPOLLOUT.rawValue != 0, foreign.socket(id) === s { s.onWritable() }
    }

    private func fireTimers() {
        let due = timers.takeDue(now: monotonicMillis())
        for body in due { body(self) }
    }

    /// Starts watching `socket.fd` for input; the loop holds the socket until `unregister`.
    /// Returns the id the other calls take.
    @discardableResult
    func register(_ socket: LoopSocket) -> LoopSocketID {
        let id = foreign.add(socket)
        addInterest(socket.fd, token: Self.token(id), events: EPOLLIN.rawValue)
        return id
    }

    /// Asks for `onWritable` calls (while `on`) besides `onReadable`.
    func setWriteInterest(_ id: LoopSocketID, _ on: Bool) {
        guard let s = foreign.socket(id) else { return }
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue | (on ? EPOLLOUT.rawValue : 0)
        ev.data.u64 = Self.token(id)
        epoll_ctl(epfd, EPOLL_CTL_MOD, s.fd, &ev)
    }

    /// Stops watching and lets the socket go; no callback reaches it after this returns, even
    /// for events already taken in this turn. The owner closes the fd (after this call).
    func unregister(_ id: LoopSocketID) {
        guard let s = foreign.remove(id) else { return }
        epoll_ctl(epfd, EPOLL_CTL_DEL, s.fd, nil)
    }

    /// Runs `body` on this loop once `ms` milliseconds have passed (0: at the end of this turn).
    @discardableResult
    func after(ms: Int64, _ body: @escaping (EventLoop) -> Void) -> TimerID {
        timers.add(deadline: monotonicMillis() + max(0, ms), body)
    }

    /// A timer that has not fired yet never will.
    func cancel(_ timer: TimerID) { timers.cancel(timer) }

    private func reap() {
        guard !retired.isEmpty else { return }
        for c in retired {
            close(c.fd) // also removes it from the epoll set
            let slot = Int(c.id.slot)
            slots[slot] = nil
            generations[slot] = SlotGeneration.next(after: generations[slot])
            freeSlots.append(c.id.slot)
            connectionCount -= 1
            shared.connections.subtract(1, ordering: .relaxed)
        }
        retired.removeAll(keepingCapacity: true)
    }

    private func sweep() {
        for case let c? in slots where c.phase != .closed { c.sweep(now: now) }
        // Resume accepting on listeners paused for lack of file descriptors.
        for i in listenSockets.indices where !listenSockets[i].active && !isShuttingDown {
            listenSockets[i].active = true
            addInterest(listenSockets[i].fd, token: Token.listenerTag | UInt64(i), events: EPOLLIN.rawValue)
        }
    }

    // MARK: WebSocket bookkeeping

    func webSocketOpened() { shared.webSockets.add(1, ordering: .relaxed) }
    func webSocketClosed() { shared.webSockets.subtract(1, ordering: .relaxed) }

    func takeEventScratch() -> [WebSocketEvent] {
        var s: [WebSocketEvent] = []
        swap(&s, &eventScratch)
        return s
    }

    func returnEventScratch(_ s: [WebSocketEvent]) {
        if eventScratch.capacity < s.capacity { eventScratch = s }
    }

    // MARK: shutdown

    /// Stops accepting, closes WebSockets with 1001 and lets output drain; the loop exits when
    /// its last connection is gone or at `deadline`.
    func beginShutdown(deadlineMs: Int64) {
        isShuttingDown = true
        shutdownDeadline = now + deadlineMs
        for s in listenSockets { close(s.fd) }
        listenSockets.removeAll()
        for case let c? in slots { c.beginShutdown() }
    }
}

/// Counters shared by all loops (atomics; read by stats and tests).
final class EngineCounters: Sendable {
    let connections = Atomic<Int>(0)
    let webSockets = Atomic<Int>(0)
    /// Connections closed with 4009 because their unsent output passed its cap.
    let slowConsumerCloses = Atomic<Int>(0)
    /// Times a fan-out was cut short by a turn's budget and went on in the next turn.
    let fanOutsResumed = Atomic<Int>(0)
    init() {}
}
