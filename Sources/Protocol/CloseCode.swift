// Close codes the hub sends or accepts (RFC 6455 §7.4 and the contract's 4xxx codes).
public struct CloseCode: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let normal = CloseCode(1000)
    public static let goingAway = CloseCode(1001)
    public static let protocolError = CloseCode(1002)
    public static let unsupportedData = CloseCode(1003)
    public static let invalidPayload = CloseCode(1007)
    public static let policyViolation = CloseCode(1008)
    public static let messageTooBig = CloseCode(1009)
    public static let internalError = CloseCode(1011)
    /// Contract codes (docs/protocol.md "Close codes").
    public static let unauthorized = CloseCode(4001)
    public static let authTimeout = CloseCode(4008)
    public static let slowConsumer = CloseCode(4009)

    /// Whether a peer may put this code on the wire (§7.4.1/§7.4.2): 1005, 1006 and 1015
    /// are reserved for local use, 1004 and 1016–2999 are unassigned, 3000–4999 are for
    /// libraries and applications.
    public var isValidOnWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014: return true
        case 3000...4999: return true
        default: return false
        }
    }
    public var description: String { String(rawValue) }
}
