import Core
import Persistence
import Protocol

// GET and POST /v1/conversations/{service}/{clientId}/messages: a backend reads a
// conversation, or posts a message into it as the platform or as a bot (stored and pushed
// like any message); PUT …/status sets the conversation's support-desk status.
extension BridgeAPI {
    /// The sender of messages the platform posts.
    /// Its id is outside the user-id alphabet (':'), so no user's token can ever share its
    /// client_msg_id space.
    static let systemSender = UserRecord(id: "system:montrose", role: "system", name: "Montrose")

    func getMessages(_ c: Call, service: String, client: String) {
        do throws(APIError) {
            let key = try conversation(service, client)
            let before = try queryInt(c, "before", 1...Int64.max)
            let limit = try queryInt(c, "limit", 1...Int64(ContractLimits.maxPage)) ?? Int64(ContractLimits.defaultPage)
            store.messages(key, before: before, limit: Int(limit)) { result in
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(let page):
                    c.json(.ok, JSONWriter.object(capacity: 1024) { w in
                        w.key("messages"); w.messageList(page.messages)
                        w.key("more"); w.bool(page.more)
                    })
                }
            }
        } catch { c.fail(error) }
    }

    func postMessage(_ c: Call, service: String, client: String) {
        do throws(APIError) {
            let key = try conversation(service, client)
            let idempotency = try idempotencyKey(c)
            let body = try RequestBody(c.request.body)
            let attachments = try body.attachments("attachments", policy: live.attachmentPolicy)
            // With attachments the text may be empty (a file sent on its own), never white space only.
            let text = try body.string("text", required: attachments.isEmpty, min: attachments.isEmpty ? 1 : 0, max: ContractLimits.maxText) ?? ""
            guard !MessageText.isBlank(text) || (!attachments.isEmpty && text.isEmpty) else {
                throw APIError.invalid("text", attachments.isEmpty ? "must contain something other than white space"
                                                                   : "must be empty or contain something other than white space")
            }
            // The message's own dedupe key makes the retry safe in the same transaction: an
            // Idempotency-Key without client_msg_id serves as one.
            let explicit = try body.string("client_msg_id", required: false, max: ContractLimits.maxClientMsgId)
            let explicitId = explicit != nil
            let clientMsgId = explicit ?? idempotency.map { "idem:" + $0 }
            let botID = try body.string("as", required: false, max: 64)
            if let botID, !UserID.isValid(botID) { throw APIError.invalid("as", "must be a bot's user id (1–64 of A-Za-z0-9_.@-)") }
            let store = self.store, live = self.live
            // The sender: the platform itself, or a bot stored with PUT /v1/users (read first).
            let sender: @Sendable (@escaping @Sendable (UserRecord) -> Void) -> Void = { use in
                guard let botID else { return use(Self.systemSender) }
                store.user(botID) { found in
                    switch found {
                    case .failure(let e): c.fail(.storage(e))
                    case .success(nil): c.fail(APIError(.notFound, "no user \(botID); create the bot with PUT /v1/users/\(botID) first"))
                    case .success(let u?) where u.role != Vocabulary.botRole:
                        c.fail(APIError(.conflict, "\(botID) has the role \(u.role), not bot"))
                    case .success(let u?): use(UserRecord(id: u.id, role: u.role, name: u.name))
                    }
                }
            }
            sender { from in
            let message = NewMessage(conversation: key, sender: from, text: text, clientMsgId: clientMsgId, ts: wallMillis(),
                                     attachments: attachments)
            store.appendMessage(message, notify: live.unwatchingParticipants(key, sender: from.id)) { result in
                live.messageAnswered(result, key)
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(let a):
                    if a.duplicate && (a.message.conversation != key || a.message.text != text) {
                        // The same dedupe key for a different message: refused, never stored twice.
                        return c.fail(explicitId
                            ? APIError(.conflict, "client_msg_id was already used for another message")
                            : APIError(.unprocessable, "Idempotency-Key was already used for a different request", code: .conflict))
                    }
                    var r = HTTPResponse(status: .created, headers: [("Content-Type", "application/json")],
                                         body: JSONWriter.object { w in w.messageFields(a.message) })
                    if a.duplicate { r.headers.append(("Idempotent-Replayed", "true")) }
                    c.respond(r)
                }
            }
            }
        } catch { c.fail(error) }
    }

    /// DELETE /v1/conversations/{service}/{clientId}/messages/{seq}: the platform erases a
    /// message (moderation: at any time, as an admin may), recorded as `by` (default the platform).
    func deleteMessage(_ c: Call, service: String, client: String, seq: String) {
        do throws(APIError) {
            let key = try conversation(service, client)
            let seq = try Self.seq(seq)
            let by = try c.query("by").map { raw throws(APIError) in try userID(raw, "by") } ?? Self.systemSender.id
            let live = self.live
            let r = MessageChangeRequest(conversation: key, seq: seq, actor: by, anyTime: true, now: wallMillis(), windowMs: 0)
            store.deleteMessage(r) { result in
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(.changed(let m, let notes)):
                    live.messageChanged(m, notifications: notes)
                    c.json(.ok, JSONWriter.object { w in w.messageFields(m) })
                case .success(.unchanged(let m)): c.json(.ok, JSONWriter.object { w in w.messageFields(m) })
                case .success: c.fail(APIError(.notFound, "no message \(seq) in \(key.channel)"))
                }
            }
        } catch { c.fail(error) }
    }

    /// GET …/messages/{seq}/edits: a message as it is and the texts it had before (moderation).
    func getMessageEdits(_ c: Call, service: String, client: String, seq: String) {
        do throws(APIError) {
            let key = try conversation(service, client)
            let seq = try Self.seq(seq)
            store.messageEdits(key, seq: seq) { result in
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(nil): c.fail(APIError(.notFound, "no message \(seq) in \(key.channel)"))
                case .success(let found?):
                    c.json(.ok, JSONWriter.object(capacity: 1024) { w in
                        w.key("message"); w.beginObject(); w.messageFields(found.message); w.endObject()
                        w.key("edits"); w.editList(found.edits)
                    })
                }
            }
        } catch { c.fail(error) }
    }

    /// A seq in a path: a positive integer.
    private static func seq(_ text: String) throws(APIError) -> Int64 {
        guard text.count <= 19, text.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(text), n >= 1 else {
            throw APIError(.notFound, "no such message: the seq in the path must be a positive integer")
        }
        return n
    }

    /// PUT /v1/conversations/{service}/{clientId}/status: the platform sets a conversation's
    /// status (`by`: who it names as having set it, the platform itself unless given).
    func putStatus(_ c: Call, service: String, client: String) {
        do throws(APIError) {
            let key = try conversation(service, client)
            let body = try RequestBody(c.request.body)
            let status = try body.requiredChoice("status", Vocabulary.conversationStatuses)
            var by = Self.systemSender.id
            if let id = try body.string("by", required: false, max: 64) {
                guard UserID.isValid(id) else { throw APIError.invalid("by", "must be a user id (1–64 of A-Za-z0-9_.@-)") }
                by = id
            }
            let live = self.live
            store.setStatus(key, status, by: by, now: wallMillis()) { result in
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(let change):
                    if change.changed { live.statusChanged(change.status) }
                    c.json(.ok, JSONWriter.object { w in w.statusFields(change.status) })
                }
            }
        } catch { c.fail(error) }
    }
}
