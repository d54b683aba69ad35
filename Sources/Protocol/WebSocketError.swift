// Every rule of RFC 6455 / RFC 7692 a peer can break while sending frames, each mapped once
// to the close code the hub answers with.
public enum WebSocketError: Error, Equatable, Sendable {
    case unmaskedFrame
    case reservedBitsSet
    case reservedOpcode(UInt8)
    case controlFrameTooLong
    case fragmentedControlFrame
    case unexpectedContinuation
    case expectedContinuation
    case invalidLength
    case invalidUTF8
    case messageTooBig(limit: Int)
    case invalidClosePayload
    case invalidCloseCode(UInt16)
    case compressedContinuation
    case invalidCompressedData

    public var closeCode: CloseCode {
        switch self {
        case .invalidUTF8, .invalidCompressedData: return .invalidPayload
        case .messageTooBig: return .messageTooBig
        default: return .protocolError
        }
    }

    /// The close reason sent to the peer (short; a close frame carries at most 123 bytes of it).
    public var reason: String {
        switch self {
        case .unmaskedFrame: return "client frames must be masked"
        case .reservedBitsSet: return "reserved bits set"
        case .reservedOpcode(let op): return "reserved opcode \(op)"
        case .controlFrameTooLong: return "control frame over 125 bytes"
        case .fragmentedControlFrame: return "fragmented control frame"
        case .unexpectedContinuation: return "continuation without a message"
        case .expectedContinuation: return "new message inside a fragmented message"
        case .invalidLength: return "invalid frame length"
        case .invalidUTF8: return "invalid UTF-8 in text"
        case .messageTooBig(let limit): return "message over \(limit) bytes"
        case .invalidClosePayload: return "invalid close payload"
        case .invalidCloseCode(let code): return "invalid close code \(code)"
        case .compressedContinuation: return "RSV1 on a continuation frame"
        case .invalidCompressedData: return "invalid compressed data"
        }
    }
}
