/// The one rule for node ids (and cluster names): 1 to 64 of `A-Za-z0-9._-`. They end up in
/// Redis keys, hash fields, channel names, CLIENT SETNAME and session ids, all of which take
/// these bytes as they are.
enum NodeID {
    static let maxBytes = 64

    static func isValid(_ id: String) -> Bool {
        (1...maxBytes).contains(id.utf8.count) && id.utf8.allSatisfy { b in
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }
}
