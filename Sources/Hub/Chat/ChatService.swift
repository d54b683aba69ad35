import Foundation
import Persistence
import Protocol

// What every chat session shares: the store, the assignment directory, the router and the
// token verifier. Sendable; per-connection state lives in Session.
final class ChatService: Sendable {
    let store: Store
    let directory: Directory
    let router: Router
    let verifier: JWTVerifier
    let limits: ChatLimits
    let presence = Presence()

    init(store: Store, directory: Directory, router: Router, verifier: JWTVerifier, limits: ChatLimits = ChatLimits()) {
        self.store = store
        self.directory = directory
        self.router = router
        self.verifier = verifier
        self.limits = limits
    }

    /// An assignment changed: the directory is updated at once, and the agent who lost the
    /// conversation has every live subscription to it ended with a `revoked` push.
    func reassign(_ key: ConversationKey, to agent: String?) {
        let previous = directory.agent(for: key)
        directory.setAgent(agent, for: key)
        if let previous, previous != agent { router.revoke(key.channel, user: previous) }
    }
}

/// Limits of the JSON ops (PROTOCOL.md "Ops"), separate from the WebSocket message limit.
struct ChatLimits: Sendable {
    var authDeadlineMs: Int64 = 10_000
    var maxEnvelopeBytes = 64 * 1024
    var maxTextCharacters = 8_000
    var maxClientMsgIdCharacters = 64
    var pageSize = 100
    var defaultHistoryLimit = 50
    var maxSubscriptions = 500
    /// Store-backed requests (send, subscribe, history, read, conversations) a connection may
    /// have unanswered; past it: `rate_limited`.
    var maxInFlight = 256
    /// Live pushes a subscription may hold while it catches up; past it: close 4009.
    var maxHeldPushes = 10_000
}

/// The JSON shape of a stored message (results and `message` pushes share it).
extension JSONWriter {
    mutating func messageFields(_ m: StoredMessage) {
        key("channel"); string(m.conversation.channel)
        key("seq"); int(m.seq)
        key("msg_id"); int(m.msgId)
        key("from"); beginObject()
        key("id"); string(m.senderId)
        key("role"); string(m.senderRole)
        key("name"); string(m.senderName)
        endObject()
        key("text"); string(m.text)
        key("ts"); int(m.ts)
        key("client_msg_id")
        if let c = m.clientMsgId { string(c) } else { null() }
    }

    mutating func messageList(_ list: [StoredMessage]) {
        beginArray()
        for m in list {
            beginObject()
            messageFields(m)
            endObject()
        }
        endArray()
    }
}

extension Publication {
    static func message(_ m: StoredMessage) -> Publication {
        .push(channel: m.conversation.channel, message: m) { w in
            w.key("type"); w.string("message")
            w.messageFields(m)
        }
    }
}
