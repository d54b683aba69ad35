import Protocol

// A publication as it travels between nodes through Redis: binary, versioned, small.
//
//   version (1) | kind (1) | flags (1) | node id length (1) | node id
//   | seq (8, big-endian)? | notification id (8)? | member length (1) + member? | body
//
// Flags: bit 0 seq, bit 1 notification id, bit 2 member (a `join`/`leave` push: the user it is
// about, who never receives it), bit 3 staff only (an internal note: never written to a
// client's connection). Any other bit makes the envelope unreadable. The body of a
// push is the push's JSON (the receiving node frames it once); of a revoke, the user id. The
// node id lets a node skip its own publications (it delivered them locally).
struct BrokerEnvelope: Equatable {
    enum Kind: UInt8 {
        case push = 1
        case revoke = 2
    }

    static let version: UInt8 = 1
    private enum Flag {
        static let seq: UInt8 = 1
        static let notificationID: UInt8 = 2
        static let member: UInt8 = 4
        static let staffOnly: UInt8 = 8
        static let all: UInt8 = seq | notificationID | member | staffOnly
    }

    let kind: Kind
    let origin: String
    let seq: Int64?
    let notificationID: Int64?
    let member: String?
    var staffOnly = false
    let body: [UInt8]

    func encoded() -> [UInt8] {
        body.withUnsafeBytes {
            Self.encode(kind: kind, origin: Array(origin.utf8), seq: seq, notificationID: notificationID, member: member,
                        staffOnly: staffOnly, body: $0)
        }
    }

    /// The envelope's bytes, written straight from `body` (a publication's payload is not
    /// copied into an array first: one copy per publish). `origin` is at most 255 bytes (node
    /// ids are at most 64), as is `member` (user ids are at most 64).
    static func encode(kind: Kind, origin: [UInt8], seq: Int64?, notificationID: Int64?, member: String? = nil,
                       staffOnly: Bool = false, body: UnsafeRawBufferPointer) -> [UInt8] {
        let node = origin.prefix(255)
        let user = member.map { $0.utf8.prefix(255) }
        var out: [UInt8] = []
        out.reserveCapacity(4 + node.count + 16 + 1 + (user?.count ?? 0) + body.count)
        out.append(version)
        out.append(kind.rawValue)
        out.append((seq == nil ? 0 : Flag.seq) | (notificationID == nil ? 0 : Flag.notificationID) | (user == nil ? 0 : Flag.member)
                   | (staffOnly ? Flag.staffOnly : 0))
        out.append(UInt8(node.count))
        out.append(contentsOf: node)
        if let seq { append(seq, to: &out) }
        if let notificationID { append(notificationID, to: &out) }
        if let user {
            out.append(UInt8(user.count))
            out.append(contentsOf: user)
        }
        out.append(contentsOf: body)
        return out
    }

    /// What precedes the body, and where the body starts in the envelope's bytes.
    struct Header {
        let kind: Kind
        /// Published by the node whose id was given to `header(of:ownID:)`.
        let own: Bool
        let originBytes: Range<Int>
        let seq: Int64?
        let notificationID: Int64?
        let member: String?
        let staffOnly: Bool
        let bodyStart: Int
    }

    /// Nil for anything this version cannot read: another version, an unknown kind or flag, a
    /// cut message, a seq below 1, a member that is not a valid user id. The origin is only
    /// compared with `ownID`'s bytes (no string is made of it).
    static func header(of bytes: [UInt8], ownID: [UInt8]) -> Header? {
        guard bytes.count >= 4, bytes[0] == version, let kind = Kind(rawValue: bytes[1]) else { return nil }
        let flags = bytes[2]
        guard flags & ~Flag.all == 0 else { return nil }
        var p = 4 + Int(bytes[3])
        guard bytes.count >= p else { return nil }
        let origin = 4..<p
        let own = ownID.count == origin.count && bytes[origin].elementsEqual(ownID)
        var seq: Int64?
        var notificationID: Int64?
        var member: String?
        if flags & Flag.seq != 0 {
            guard bytes.count >= p + 8 else { return nil }
            let s = read(bytes, at: p)
            guard s >= 1 else { return nil }
            seq = s
            p += 8
        }
        if flags & Flag.notificationID != 0 {
            guard bytes.count >= p + 8 else { return nil }
            notificationID = read(bytes, at: p)
            p += 8
        }
        if flags & Flag.member != 0 {
            guard bytes.count > p, bytes.count >= p + 1 + Int(bytes[p]) else { return nil }
            let m = String(decoding: bytes[(p + 1)..<(p + 1 + Int(bytes[p]))], as: UTF8.self)
            guard UserID.isValid(m) else { return nil }
            member = m
            p += 1 + Int(bytes[p])
        }
        return Header(kind: kind, own: own, originBytes: origin, seq: seq, notificationID: notificationID, member: member,
                      staffOnly: flags & Flag.staffOnly != 0, bodyStart: p)
    }

    init?(decoding bytes: [UInt8]) {
        guard let h = Self.header(of: bytes, ownID: []) else { return nil }
        self.init(kind: h.kind, origin: String(decoding: bytes[h.originBytes], as: UTF8.self), seq: h.seq,
                  notificationID: h.notificationID, member: h.member, staffOnly: h.staffOnly, body: Array(bytes[h.bodyStart...]))
    }

    init(kind: Kind, origin: String, seq: Int64?, notificationID: Int64?, member: String? = nil, staffOnly: Bool = false,
         body: [UInt8]) {
        self.kind = kind
        self.origin = origin
        self.seq = seq
        self.notificationID = notificationID
        self.member = member
        self.staffOnly = staffOnly
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
