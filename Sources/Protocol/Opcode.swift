// RFC 6455 §5.2 opcodes. A small struct rather than an enum so reserved values can be
// represented (and rejected) without a separate "unknown" case.
public struct Opcode: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }

    public static let continuation = Opcode(0x0)
    public static let text = Opcode(0x1)
    public static let binary = Opcode(0x2)
    public static let close = Opcode(0x8)
    public static let ping = Opcode(0x9)
    public static let pong = Opcode(0xA)

    public var isControl: Bool { rawValue & 0x8 != 0 }
    public var isKnown: Bool {
        switch rawValue {
        case 0x0, 0x1, 0x2, 0x8, 0x9, 0xA: return true
        default: return false
        }
    }
    public var description: String {
        switch rawValue {
        case 0x0: return "continuation"
        case 0x1: return "text"
        case 0x2: return "binary"
        case 0x8: return "close"
        case 0x9: return "ping"
        case 0xA: return "pong"
        default: return "reserved(\(rawValue))"
        }
    }
}
