import Core
import Persistence
import Protocol

// Edit and delete (docs/protocol.md "Edit and delete"), and an admin's read of a message's
// earlier texts (moderation).
extension Session {
    /// `edit`: the sender replaces the text of their message within the edit window.
    func edit(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard let (key, seq) = messageRef(c, id, request, user) else { return }
        guard let text = request["text"]?.stringValue else { return replyError(c, id, .badRequest, "text must be a string") }
        guard checkText(c, id, text, mayBeEmpty: false) else { return }
        let r = MessageChangeRequest(conversation: key, seq: seq, actor: user.id, now: wallMillis(),
                                     windowMs: chat.limits.editWindowMs, withNotes: seesNotes)
        let hop = hop(c), chat = self.chat
        inFlight += 1
        chat.store.editMessage(r, text: text) { result in
            // As for send: the reply is queued before the push.
            hop.run { s, c in
                s.inFlight -= 1
                s.replyChange(c, id, result, .edit) { w, m in
                    w.key("seq"); w.int(m.seq)
                    w.key("edited_at"); if let e = m.editedAt { w.int(e) } else { w.null() }
                }
            }
            if case .success(.changed(let m, let notes)) = result { chat.messageChanged(m, notifications: notes) }
        }
    }

    /// `delete`: the sender within the window, or an admin at any time, erases a message.
    func delete(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard let (key, seq) = messageRef(c, id, request, user) else { return }
        let r = MessageChangeRequest(conversation: key, seq: seq, actor: user.id, anyTime: user.role == .admin, now: wallMillis(),
                                     windowMs: chat.limits.editWindowMs, withNotes: seesNotes)
        let hop = hop(c), chat = self.chat
        inFlight += 1
        chat.store.deleteMessage(r) { result in
            hop.run { s, c in
                s.inFlight -= 1
                s.replyChange(c, id, result, .delete) { w, m in w.key("seq"); w.int(m.seq) }
            }
            if case .success(.changed(let m, let notes)) = result { chat.messageChanged(m, notifications: notes) }
        }
    }

    /// `edits`: a message as it is and the texts it had before (admins only).
    func edits(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard user.role == .admin else { return replyError(c, id, .forbidden, "the edit history is for admins") }
        guard let (key, seq) = messageRef(c, id, request, user) else { return }
        let hop = hop(c)
        inFlight += 1
        chat.store.messageEdits(key, seq: seq) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let found?):
                    s.reply(c, id) { w in
                        w.key("message"); w.beginObject(); w.messageFields(found.message); w.endObject()
                        w.key("edits"); w.editList(found.edits)
                    }
                case .success(nil): s.replyError(c, id, .notFound, "no message \(seq) in \(key.channel)")
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    /// The conversation and seq a request names, on a channel the caller may read.
    private func messageRef(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) -> (ConversationKey, Int64)? {
        guard let (channel, _) = channel(c, id, request, user) else { return nil }
        guard case .conversation(let key) = channel else {
            replyError(c, id, .badRequest, "messages are kept in conversation channels")
            return nil
        }
        guard case .int(let seq)? = request["seq"], seq >= 1 else {
            replyError(c, id, .badRequest, "seq must be a positive integer")
            return nil
        }
        return (key, seq)
    }

    private enum Change: String {
        case edit, delete
    }

    private func replyChange(_ c: Connection, _ id: Int64, _ result: Result<MessageChange, StoreError>, _ change: Change,
                             _ fields: (inout JSONWriter, StoredMessage) -> Void) {
        let verb = change.rawValue
        switch result {
        case .success(.changed(let m, _)), .success(.unchanged(let m)): reply(c, id) { w in fields(&w, m) }
        case .success(.notFound): replyError(c, id, .notFound, change == .edit ? "no such message (or it is deleted)" : "no such message")
        case .success(.notSender): replyError(c, id, .forbidden, "only the sender may \(verb) a message\(change == .delete ? " (or an admin)" : "")")
        case .success(.windowClosed):
            replyError(c, id, .forbidden, "the \(verb) window (\(chat.limits.editWindowMs / 1000) s after sending) has passed")
        case .success(.tooManyEdits):
            replyError(c, id, .forbidden, "a message may be edited at most \(ContractLimits.maxEditsPerMessage) times")
        case .failure(let e): replyStoreError(c, id, e)
        }
    }
}
