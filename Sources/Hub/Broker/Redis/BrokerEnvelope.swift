// A publication as it travels between nodes through Redis: binary, versioned, small.
//
//   version (1) | kind (1) | flags (1: bit 0 seq, bit 1 notification id) | node id length (1)
//   | node id | seq (8, big-endian)? | notification id (8)? | body
//
// The body of a push is the push's JSON (the receiving node frames it once); of a revoke, the
// user id. The node id lets a node skip its own publications (it delivered them locally).
struct BrokerEnvelope: Equatable {
    enum Kind: UInt8 {
        case push = 1
        case revoke = 2
    }

    static let version: UInt8 = 1

    let kind: Kind
    let origin: String
    let seq: Int64?
    let notificationID: Int64?
    let body: [UInt8]

    func encoded() -> [UInt8] {
        body.withUnsafeBytes { Self.encode(kind: kind, origin: origin, seq: seq, notificationID: notificationID, body: $0) }
    }

    /// The envelope's bytes, written straight from `body` (a publication's payload is not
    /// copied into an array first: one copy per publish).
    static func encode(kind: Kind, origin: String, seq: Int64?, notificationID: Int64?, body: UnsafeRawBufferPointer) -> [UInt8] {
        let node = origin.utf8.prefix(255)
        var out: [UInt8] = []
        out.reserveCapacity(4 + node.count + 16 + body.count)
        out.append(version)
        out.append(kind.rawValue)
        out.append((seq == nil ? 0 : 1) | (notificationID == nil ? 0 : 2))
        out.append(UInt8(node.count))
        out.append(contentsOf: node)
        if let seq { append(seq, to: &out) }
        if let notificationID { append(notificationID, to: &out) }
        out.append(contentsOf: body)
        return out
    }

    /// What precedes the body, and where the body starts in the envelope's bytes.
    struct Header {
        let kind: Kind
        let origin: String
        let seq: Int64?
        let notificationID: Int64?
        let bodyStart: Int
    }

    /// Nil for anything this version cannot read (another version, a cut message).
    static func header(of bytes: [UInt8]) -> Header? {
        guard bytes.count >= 4, bytes[0] == version, let kind = Kind(rawValue: bytes[1]) else { return nil }
        let flags = bytes[2]
        var p = 4 + Int(bytes[3])
        guard bytes.count >= p else { return nil }
        let origin = String(decoding: bytes[4..<p], as: UTF8.self)
        var seq: Int64?
        var notificationID: Int64?
        if flags & 1 != 0 {
            guard bytes.count >= p + 8 else { return nil }
            seq = read(bytes, at: p)
            p += 8
        }
        if flags & 2 != 0 {
            guard bytes.count >= p + 8 else { return nil }
            notificationID = read(bytes, at: p)
            p += 8
        }
        return Header(kind: kind, origin: origin, seq: seq, notificationID: notificationID, bodyStart: p)
    }

    init?(decoding bytes: [UInt8]) {
        guard let h = Self.header(of: bytes) else { return nil }
        self.init(kind: h.kind, origin: h.origin, seq: h.seq, notificationID: h.notificationID, body: Array(bytes[h.bodyStart...]))
    }

    init(kind: Kind, origin: String, seq: Int64?, notificationID: Int64?, body: [UInt8]) {
        self.kind = kind
        self.origin = origin
        self.seq = seq
        self.notificationID = notificationID
        self.body = body
    }

    private static func append(_ v: Int64, to out: inout [UInt8]) {
        let u = UInt64(bitPattern: v)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: u >> UInt64(shift))) }
    }

    private static func read(_ b: [UInt8], at p: Int) -> Int64 {
        var u: UInt64 = 0
        for i in 0..<8 { u = u << 8 | UInt64(b[p + i]) }
        return Int64(bitPattern: u)
    }
}
