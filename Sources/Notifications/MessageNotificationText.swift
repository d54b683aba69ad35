import Persistence
import Protocol

// The words of a message notification (docs/protocol.md, the `messages` category): the title
// names the sender and how many unread messages it stands for, the body is the latest
// message. Pure; the store receives `wording` and only stores what it returns.
public enum MessageNotificationText {
    /// Characters of the message kept in the body; a longer one is cut and ends with "…".
    public static let maxBodyCharacters = 200

    public static func title(sender: String, count: Int) -> String {
        count == 1 ? "New message from \(sender)" : "\(count) new messages from \(sender)"
    }

    /// What a notification says once the message it quoted is deleted (its text is erased).
    public static let deletedBody = "This message was deleted."

    public static func body(_ text: String) -> String {
        text.count > maxBodyCharacters ? String(text.prefix(maxBodyCharacters)) + "…" : text
    }

    /// What `SQLiteStore(messageWording:)` is given.
    public static let wording: MessageNotificationWording = { message, count in
        (title: title(sender: message.senderName, count: count),
         body: message.isDeleted ? deletedBody : body(message.text))
    }
}
