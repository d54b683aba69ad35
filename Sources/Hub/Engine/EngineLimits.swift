import Protocol

// Every limit and number the engine uses, with its default. The flag that changes a limit, where
// there is one, is in App/Configuration.swift. Per-connection limits are read through the
// connection's listener; the loop-wide ones (the "Loop" section) through the `EngineLimits` given
// to `EventLoop.init`.
struct EngineLimits: Sendable {
    /// Largest WebSocket message after inflation (`--max-message`); over it: close 1009.
    var maxMessage = 1 << 20
    /// Request line, header and body limits (answered 414/431/413).
    var http = HTTPLimits()
    /// A request (head and body) must arrive this soon after the connection opens or the
    /// previous response; this is also the WebSocket handshake deadline (slow clients closed).
    var requestTimeoutMs: Int64 = 10_000
    /// An idle keep-alive HTTP connection is closed after this.
    var keepAliveIdleMs: Int64 = 60_000
    /// A WebSocket that has sent nothing for this long gets a ping...
    var pingIntervalMs: Int64 = 30_000
    /// ...and is closed (1001) if nothing arrives this long after the ping.
    var pongTimeoutMs: Int64 = 30_000
    /// How long a closing connection waits for the peer's FIN after ours.
    var lingerMs: Int64 = 2_000
    /// Unsent output per WebSocket connection; over it the connection is closed with 4009.
    var maxOutputBytes = 4 << 20
    /// Unsent frames per connection (each is a reference to a shared frame: 8 bytes, so a
    /// slow consumer of small pushes costs at most ~8 KiB here however small the frames are).
    /// A reader 1,024 pushes behind is better served by a reconnect with `since` than by the
    /// backlog, and a small cap cuts stuck readers off sooner and cheaper (fewer references to
    /// drop when they are cut, all at once, in a busy channel). Applied while the socket
    /// refuses output: what a busy loop queued before its next write is not the reader's doing.
    var maxOutputFrames = 1_024
    /// A reader whose socket has refused more for `stalledMs` while over `maxStalledFrames`
    /// pushes wait for it (queued, or held for a catch-up) is stuck, not slow, and is cut off
    /// (4009) then, without waiting for the frame cap: a channel busy enough to queue that many
    /// that fast would otherwise keep paying for every stuck reader until it is 1,024 pushes
    /// behind. A reader that makes room (reads) starts the clock again, so slow readers still
    /// get the whole frame cap.
    var maxStalledFrames = 256
    var stalledMs: Int64 = 250
    /// The kernel send buffer of each accepted socket (SO_SNDBUF; Linux doubles it: 128 KiB). Fixed
    /// rather than autotuned, so a reader that never reads holds at most this much kernel
    /// memory, and falls behind into the hub's own (capped) queue soon enough to be told 4009.
    /// 0 leaves the kernel's autotuning.
    var socketSendBuffer = 64 * 1024
    /// TCP_NOTSENT_LOWAT of each accepted socket: the kernel takes at most this much beyond what
    /// is in flight, so a reader that stopped reading is noticed (EAGAIN) after a few dozen
    /// pushes, not hundreds; what it already took is all it costs the kernel. Sending speed to
    /// readers that read is unchanged (bytes in flight are not counted). 0 leaves it unset.
    var socketUnsentLowWater = 4 * 1024
    /// Messages shorter than this go out uncompressed even when permessage-deflate is on.
    var compressionThreshold = 32
    /// Connections the process accepts in total (set from the open-file limit at start).
    var maxConnections = 10_000
    /// Bytes read per readable event before the loop moves to the next socket (fairness).
    var readBudget = 256 * 1024
    /// Bytes one flush of a connection writes at most before the loop moves on (fairness).
    var bytesPerFlush = 1 << 20
    /// Room added to two of the largest messages for the output cap (`effectiveMaxOutputBytes`).
    var outputSlackBytes = 64 * 1024
    /// Pending connections the kernel queues on each listening socket.
    var listenBacklog: Int32 = 4_096

    /// Output cap actually applied: at least two of the largest messages, so an echo of a
    /// maximal message never trips it.
    var effectiveMaxOutputBytes: Int { max(maxOutputBytes, 2 * maxMessage + outputSlackBytes) }
    /// How long a server-initiated close waits for the peer's close frame (then FIN and linger).
    var closeHandshakeMs: Int64 { 2 * lingerMs }

    // MARK: Loop

    /// The loop's read buffer and its buffer for decrypted TLS input, each.
    var loopBufferBytes = 64 * 1024
    /// Events taken from epoll per wait.
    var epollEventsPerWait = 512
    /// How often the loop sweeps its connections for timers.
    var sweepIntervalMs: Int64 = 1_000
    /// How long the loop waits for events while cuts or closes wait for their rate.
    var rateLimitedWaitMs: Int32 = 1
    /// Connections accepted per wake of a listening socket, before the loop serves the others.
    var acceptsPerWake = 256
    /// Time one turn's flush may take before the rest is carried to the next turn (µs), and
    /// the time a turn's share of a fan-out may take (`LoopRegistry`). Short,
    /// because every hop of a message waits for a turn to end: the sender's frame to be read,
    /// the store's answer, the push to be written. With 2 ms turns during a burst those waits
    /// added up to 13–16 ms per message in the slow-consumer test; with 0.5 ms, 2–6 ms.
    var flushBudgetMicros: Int64 = 500
    /// How many carried connections each turn writes at least, however busy it is.
    var carriedPerTurn = 16
    /// How many connections the budget missed that had kept up are written first next.
    var keptUpPerTurn = 16
    /// Capacity the loop's lists of waiting connections (carried writes, cuts, expiries) and
    /// of publications its fan-out has yet to deliver keep when they empty.
    var loopListCapacity = 4_096
    /// Slow consumers cut off (4009) per millisecond, and expired closes let go per millisecond
    /// (2,000 stuck readers: cut within 250 ms, let go over 500 ms), each after a burst.
    var cutsPerMillisecond = 8
    var expiriesPerMillisecond = 4
    var closeBurst = 64

    // MARK: Fixed

    /// Byte runs handed to one writev.
    static let iovecsPerWritev = 64
    /// Capacity a connection's output list keeps when it empties.
    static let outputListCapacity = 16
    /// The smallest run a connection's own frames (replies, echoes) are written into once two
    /// or more wait together: a turn's answers share one (16 echoes of 64 B fit), and it is
    /// freed once written.
    static let ownRunCapacity = 2048
}
