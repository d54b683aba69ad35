// The receiving half of a WebSocket connection as a pure state machine: bytes in, events out.
// It decodes frames incrementally (a header may straddle reads and is spilled into at most
// 14 bytes; payload bytes are unmasked in place and appended straight to the message being
// assembled), enforces every RFC 6455 framing rule, reassembles fragmented messages with
// interleaved control frames, validates UTF-8 as text arrives, and inflates permessage-deflate
// messages under the message-size cap. No sockets, no clocks.

public enum WebSocketEvent: Equatable, Sendable {
    /// A complete data message (`.text` or `.binary`), inflated, UTF-8 checked if text.
    case message(Opcode, [UInt8])
    /// A data message that lay whole in one `feed`'s input (a single uncompressed frame): where
    /// it lies there, unmasked in place and UTF-8 checked if text. It is not copied: it is read
    /// from that input, so it is valid as long as the input is.
    case messageInInput(Opcode, Range<Int>)
    case ping([UInt8])
    case pong([UInt8])
    /// The peer's close frame: its code (nil when the frame had no payload) and reason.
    case close(CloseCode?, String)

    /// The same event, with a message read in place copied out of `input` (the input it was
    /// read from): for a caller that keeps events after that input is reused.
    public func copiedOut(of input: UnsafeRawBufferPointer) -> WebSocketEvent {
        guard case .messageInInput(let opcode, let range) = self else { return self }
        return .message(opcode, Array(UnsafeRawBufferPointer(rebasing: input[range])))
    }
}

public struct WebSocketReader {
    // Stored word-sized fields first, the one-byte ones last and together: every open
    // connection holds a reader inline, and mixing them would pad each byte to a word.
    public let maxMessageSize: Int
    /// Present when permessage-deflate was negotiated.
    public let inflater: Inflater?

    // Frame in progress.
    private var header: [UInt8] = []
    private var remaining = 0
    private var maskOffset = 0

    // Message in progress.
    private var message: [UInt8] = []
    private var control: [UInt8] = []

    private var maskKey: UInt32 = 0
    public let requireMask: Bool
    private var inPayload = false
    private var frameFin = false
    private var frameOpcode = Opcode.continuation
    private var messageOpcode: Opcode?
    private var messageCompressed = false
    private var utf8 = UTF8Validator()

    /// True once a close frame was received or a rule was broken; later input is ignored.
    public private(set) var isFinished = false

    public init(maxMessageSize: Int, requireMask: Bool = true, inflater: Inflater? = nil) {
        self.maxMessageSize = maxMessageSize
        self.requireMask = requireMask
        self.inflater = inflater
    }

    /// Consumes `input` (unmasking it in place) and appends what it completes to `events`.
    /// Throws on the first broken rule; the caller closes with `error.closeCode`.
    public mutating func feed(_ input: UnsafeMutableRawBufferPointer,
                              into events: inout [WebSocketEvent]) throws(WebSocketError) {
        do {
            try decode(input, into: &events)
        } catch {
            isFinished = true // a broken rule ends the stream: later input is ignored
            throw error
        }
    }

    private mutating func decode(_ input: UnsafeMutableRawBufferPointer,
                                 into events: inout [WebSocketEvent]) throws(WebSocketError) {
        guard let base = input.baseAddress, !isFinished else { return }
        let count = input.count
        var p = 0
        while p < count && !isFinished {
            if !inPayload {
                if header.isEmpty, count - p >= 2 {
                    let need = Self.headerLength(base + p, available: count - p)
                    if need > 0 && count - p >= need {
                        let h = FrameHeader(UnsafeRawPointer(base + p))
                        // The usual frame: a whole message, all of it in this input. It is
                        // read where it lies (no buffer, no copy).
                        let inPlace = h.fin && !h.rsv1 && h.length > 0 && h.length <= count - p - need
                            && (h.opcode == .text || h.opcode == .binary) && messageOpcode == nil
                        try beginFrame(h, inPlace: inPlace)
                        p += need
                        if inPlace {
                            try takeInPlace(UnsafeMutableRawBufferPointer(start: base + p, count: remaining), at: p, into: &events)
                            p += h.length
                        } else if remaining == 0 {
                            try finishFrame(into: &events)
                        }
                        continue
                    }
                }
                // Slow path: accumulate a header that straddles reads.
                header.append(base.load(fromByteOffset: p, as: UInt8.self))
                p += 1
                if header.count >= 2 {
                    let need = header.withUnsafeBytes { Self.headerLength($0.baseAddress!, available: $0.count) }
                    if need > 0 && header.count == need {
                        let decoded = header.withUnsafeBytes { FrameHeader($0.baseAddress!) }
                        try beginFrame(decoded)
                        header.removeAll(keepingCapacity: true)
                        if remaining == 0 { try finishFrame(into: &events) }
                    }
                }
            } else {
                let n = min(remaining, count - p)
                let chunk = base + p
                if maskKey != 0 {
                    unmask(chunk, count: n, key: maskKey, offset: maskOffset)
                }
                maskOffset &+= n
                try appendPayload(UnsafeRawBufferPointer(start: chunk, count: n))
                remaining -= n
                p += n
                if remaining == 0 { try finishFrame(into: &events) }
            }
        }
    }

    /// Gives back the capacity of buffers that hold nothing between frames: the header spill
    /// (unless a header is half read), the control payload (unless a control frame's payload
    /// is being read) and the message (unless part of one is buffered). For an idle connection.
    public mutating func releaseSpareCapacity() {
        if header.isEmpty && header.capacity > 0 { header = [] }
        if !(inPayload && frameOpcode.isControl) && control.capacity > 0 { control = [] }
        if message.isEmpty && message.capacity > 0 { message = [] }
    }

    /// Bytes the reader's buffers hold room for, used or not.
    public var bufferCapacity: Int { header.capacity + control.capacity + message.capacity }

    /// Bytes the header starting at `p` needs, or 0 when fewer than 2 bytes are known.
    private static func headerLength(_ p: UnsafeRawPointer, available: Int) -> Int {
        guard available >= 2 else { return 0 }
        let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
        var n = 2
        switch b1 & 0x7F {
        case 126: n += 2
        case 127: n += 8
        default: break
        }
        if b1 & 0x80 != 0 { n += 4 }
        return n
    }

    /// The payload of a whole message that lies in the input at `offset`: unmasked and checked
    /// there, and the frame done with, as `finishFrame` leaves it.
    private mutating func takeInPlace(_ payload: UnsafeMutableRawBufferPointer, at offset: Int,
                                      into events: inout [WebSocketEvent]) throws(WebSocketError) {
        if maskKey != 0, let base = payload.baseAddress { unmask(base, count: payload.count, key: maskKey, offset: 0) }
        if frameOpcode == .text {
            guard utf8.feed(UnsafeRawBufferPointer(payload)), utf8.isComplete else { throw .invalidUTF8 }
        }
        remaining = 0
        inPayload = false
        messageOpcode = nil
        events.append(.messageInInput(frameOpcode, offset..<(offset + payload.count)))
    }

    private mutating func beginFrame(_ h: FrameHeader, inPlace: Bool = false) throws(WebSocketError) {
        let fin = h.fin, rsv1 = h.rsv1, opcode = h.opcode
        if h.rsv23 { throw .reservedBitsSet }
        guard opcode.isKnown else { throw .reservedOpcode(opcode.rawValue) }
        if requireMask && !h.masked { throw .unmaskedFrame }
        guard h.length >= 0 else { throw .invalidLength }
        let length = h.length
        maskKey = h.maskKey
        maskOffset = 0

        if opcode.isControl {
            if !fin { throw .fragmentedControlFrame }
            if length > 125 { throw .controlFrameTooLong }
            if rsv1 { throw .reservedBitsSet }
            control.removeAll(keepingCapacity: true)
        } else if opcode == .continuation {
            guard messageOpcode != nil else { throw .unexpectedContinuation }
            if rsv1 { throw .compressedContinuation }
        } else {
            if messageOpcode != nil { throw .expectedContinuation }
            if rsv1 && inflater == nil { throw .reservedBitsSet }
            messageOpcode = opcode
            messageCompressed = rsv1
            utf8.reset()
        }
        if !opcode.isControl {
            // Checked before any payload is buffered: a declared length over the cap is refused
            // at once. (Compressed bytes are capped too; inflation is capped separately.)
            if length > maxMessageSize - message.count { throw .messageTooBig(limit: maxMessageSize) }
            // Grow for what is declared, but never trust a large declaration up front. (A
            // message read in place needs no buffer.)
            if !inPlace { message.reserveCapacity(message.count + min(length, 64 * 1024)) }
        }
        frameFin = fin
        frameOpcode = opcode
        remaining = length
        inPayload = length > 0
    }

    private mutating func appendPayload(_ bytes: UnsafeRawBufferPointer) throws(WebSocketError) {
        if frameOpcode.isControl {
            control.append(contentsOf: bytes)
            return
        }
        if messageOpcode == .text && !messageCompressed {
            // Fail fast: an invalid sequence ends the connection before the message completes.
            guard utf8.feed(bytes) else { throw .invalidUTF8 }
        }
        message.append(contentsOf: bytes)
    }

    private mutating func finishFrame(into events: inout [WebSocketEvent]) throws(WebSocketError) {
        inPayload = false
        if frameOpcode.isControl {
            switch frameOpcode {
            case .ping: events.append(.ping(control))
            case .pong: events.append(.pong(control))
            default: events.append(try parseClose())
            }
            return
        }
        guard frameFin, let opcode = messageOpcode else { return }
        var payload: [UInt8] = []
        swap(&payload, &message)
        messageOpcode = nil
        if messageCompressed, let inflater {
            payload = try inflater.inflate(payload, limit: maxMessageSize)
            if opcode == .text && !UTF8Validator.isValid(payload) { throw .invalidUTF8 }
        } else if opcode == .text && !utf8.isComplete {
            throw .invalidUTF8
        }
        events.append(.message(opcode, payload))
    }

    private mutating func parseClose() throws(WebSocketError) -> WebSocketEvent {
        isFinished = true
        if control.isEmpty { return .close(nil, "") }
        if control.count == 1 { throw .invalidClosePayload }
        let code = CloseCode(UInt16(control[0]) << 8 | UInt16(control[1]))
        guard code.isValidOnWire else { throw .invalidCloseCode(code.rawValue) }
        let reason = control[2...]
        guard reason.withUnsafeBytes({ UTF8Validator.isValid($0) }) else { throw .invalidUTF8 }
        return .close(code, String(decoding: reason, as: UTF8.self))
    }
}

/// A decoded frame header (RFC 6455 §5.2), before any rule is checked.
struct FrameHeader {
    var fin: Bool
    var rsv1: Bool
    var rsv23: Bool
    var opcode: Opcode
    var masked: Bool
    /// Payload length; -1 when the 64-bit length had its most significant bit set.
    var length: Int
    var maskKey: UInt32

    /// `p` holds the whole header (its size from `WebSocketReader.headerLength`).
    init(_ p: UnsafeRawPointer) {
        let b0 = p.load(as: UInt8.self)
        let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
        fin = b0 & 0x80 != 0
        rsv1 = b0 & 0x40 != 0
        rsv23 = b0 & 0x30 != 0
        opcode = Opcode(b0 & 0x0F)
        masked = b1 & 0x80 != 0
        var offset = 2
        switch b1 & 0x7F {
        case 126:
            length = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            offset = 4
        case 127:
            let wide = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            length = wide & (1 << 63) != 0 ? -1 : Int(wide)
            offset = 10
        default:
            length = Int(b1 & 0x7F)
        }
        maskKey = masked ? p.loadUnaligned(fromByteOffset: offset, as: UInt32.self) : 0
    }
}
