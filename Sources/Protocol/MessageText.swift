// Rules for a chat message's text that every way of sending shares (the WebSocket `send` and
// the bridge's conversation post).

public enum MessageText {
    /// True when the text shows nothing: empty, or only white space (Unicode White_Space, line
    /// breaks included) and invisible format characters (zero-width space and joiners, word
    /// joiner, byte-order mark). Such a message would appear as an empty bubble, so it is refused.
    public static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { s in
            s.properties.isWhitespace || invisible.contains(s.value)
        }
    }

    private static let invisible: Set<UInt32> = [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]
}
