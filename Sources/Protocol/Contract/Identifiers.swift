// The contract's rules for user ids (token `sub`, channel names) and display names.

public enum UserID {
    public static let maxBytes = 64

    /// 1–64 of A-Za-z0-9_.@-
    public static func isValid(_ id: String) -> Bool {
        (1...maxBytes).contains(id.utf8.count) && id.utf8.allSatisfy { c in
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "@"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }
}

public enum DisplayName {
    public static let maxCharacters = 100

    /// 1–100 characters and at most 400 bytes (characters can stack combining marks without bound).
    public static func hasValidLength(_ name: String) -> Bool {
        name.utf8.count <= 4 * maxCharacters && (1...maxCharacters).contains(name.count)
    }

    /// 1–100 characters (400 bytes at most), no control characters.
    public static func isValid(_ name: String) -> Bool {
        guard hasValidLength(name) else { return false }
        // Printable ASCII (most names, checked on every connect) holds no control character;
        // the ASCII controls are 0x00-0x1F and 0x7F. Anything else asks Unicode.
        if name.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return true }
        return !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
    }
}
