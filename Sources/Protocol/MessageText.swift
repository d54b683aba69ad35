// Rules for a chat message's text that every way of sending shares (the WebSocket `send` and
// the bridge's conversation post).

public enum MessageText {
    /// True when the text shows nothing: empty, or only white space (Unicode White_Space, line
    /// breaks included), default-ignorable code points (zero-width spaces and joiners, direction
    /// marks, fillers, variation selectors, tags, the soft hyphen, the byte-order mark), control
    /// characters and the blank Braille pattern. Such a message would be an empty bubble.
    public static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { s in
            s.properties.isWhitespace || s.properties.isDefaultIgnorableCodePoint
                || s.properties.generalCategory == .control || s.value == 0x2800
        }
    }
}
