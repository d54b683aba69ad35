import Core
import Persistence
import Protocol

// The message ops: send, history and read.
extension Session {
    func send(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, access) = channel(c, id, request, user) else { return }
        guard case .conversation(let key) = channel else { return replyError(c, id, .badRequest, "send goes to a conversation channel") }
        let observer = access == .observer
        guard let text = request["text"]?.stringValue else { return replyError(c, id, .badRequest, "text must be a string") }
        let attachments: [MessageAttachment]
        do { attachments = try Params<ParamError>(object: request.objectValue ?? [:]).attachments("attachments", policy: chat.limits.attachments) }
        catch { return replyError(c, id, .badRequest, error.message) }
        // A message with attachments may have no text (a file sent on its own).
        guard checkText(c, id, text, mayBeEmpty: !attachments.isEmpty) else { return }
        guard let clientMsgId = request["client_msg_id"]?.stringValue, !clientMsgId.isEmpty,
              clientMsgId.count <= ContractLimits.maxClientMsgId else {
            return replyError(c, id, .badRequest, "client_msg_id must be a string of 1–\(ContractLimits.maxClientMsgId) characters")
        }
        var isInternal = false
        if let v = request["internal"], !v.isNull {
            guard let b = v.boolValue else { return replyError(c, id, .badRequest, "internal must be true or false") }
            guard !b || user.role.isStaff else { return replyError(c, id, .forbidden, "internal notes are for agents and admins") }
            isInternal = b
        }
        let chat = self.chat
        var message = NewMessage(conversation: key, sender: user.record, text: text, clientMsgId: clientMsgId, ts: wallMillis(),
                                 isInternal: isInternal, attachments: attachments)
        message.queueNotifyRoles = chat.queueNotifyRoles(message)
        inFlight += 1
        chat.store.appendMessage(message, notify: chat.recipients(of: message)) { result in
            // On the writer thread, in commit order: the ack is queued before the push, and
            // pushes leave in seq order; the subscribe cache learns of the commit before either.
            chat.subscribeStates?.appended(result, key.channel)
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let a):
                    s.reply(c, id) { w in
                        w.key("seq"); w.int(a.message.seq)
                        w.key("msg_id"); w.int(a.message.msgId)
                        w.key("ts"); w.int(a.message.ts)
                        w.key("duplicate"); w.bool(a.duplicate)
                    }
                case .failure(let e):
                    s.replyStoreError(c, id, e)
                }
            }
            if case .success(let a) = result { chat.messageCommitted(a, senderObserves: observer) }
        }
    }

    /// A message's text by the `send` rules (the `edit` op's too): not blank (empty only when
    /// `mayBeEmpty`), at most `ContractLimits.maxText` characters. False after the error reply.
    func checkText(_ c: Connection, _ id: Int64, _ text: String, mayBeEmpty: Bool) -> Bool {
        guard !MessageText.isBlank(text) || (mayBeEmpty && text.isEmpty) else {
            replyError(c, id, .badRequest, mayBeEmpty ? "text must be empty or contain something other than white space"
                                                      : "text must contain something other than white space")
            return false
        }
        guard text.count <= ContractLimits.maxText else {
            replyError(c, id, .tooLarge, "text over \(ContractLimits.maxText) characters")
            return false
        }
        return true
    }

    func history(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, access) = channel(c, id, request, user) else { return }
        guard case .conversation(let key) = channel else { return replyError(c, id, .badRequest, "history is kept for conversation channels") }
        let before = optionalInt(request, "before")
        if before.present && (before.value ?? 0) < 1 { return replyError(c, id, .badRequest, "before must be a positive integer") }
        let limit = optionalInt(request, "limit")
        let n = limit.present ? (limit.value ?? 0) : Int64(ContractLimits.defaultPage)
        guard (1...Int64(ContractLimits.maxPage)).contains(n) else { return replyError(c, id, .badRequest, "limit must be 1–\(ContractLimits.maxPage)") }
        if access == .observer { chat.store.recordAudit(actor: user.id, action: "history", target: key.channel, ts: wallMillis()) }
        inFlight += 1
        // A client's page counts only what it may read: notes are left out in the store.
        chat.store.messages(key, before: before.value, limit: Int(n), withNotes: seesNotes) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let page):
                    s.reply(c, id) { w in
                        w.key("messages"); w.messageList(page.messages)
                        w.key("more"); w.bool(page.more)
                    }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    func read(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, access) = channel(c, id, request, user) else { return }
        guard case .conversation(let key) = channel else { return replyError(c, id, .badRequest, "read marks are kept for conversation channels") }
        guard let seq = request["seq"]?.intValue, seq >= 0 else { return replyError(c, id, .badRequest, "seq must be a non-negative integer") }
        let observer = access == .observer
        let userID = user.id
        inFlight += 1
        let chat = self.chat
        chat.store.markRead(user: user.id, key, seq: seq, now: wallMillis()) { result in
            // The subscribe cache first: a subscribe after the ack finds the mark.
            chat.subscribeStates?.markRead(result, key.channel, user: userID)
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let r): s.reply(c, id) { w in w.key("seq"); w.int(r.mark) }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
            if case .success(let r) = result { chat.readMarkMoved(key, user: userID, r, announce: !observer) }
        }
    }
}
