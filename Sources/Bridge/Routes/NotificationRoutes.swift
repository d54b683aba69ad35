import Core
import Persistence
import Protocol

// POST /v1/notifications, POST /v1/broadcasts, GET /v1/users/{id}/notifications,
// GET /v1/notifications/{id}.
extension BridgeAPI {
    enum Target {
        case users([String])
        case audience(String) // 'all' or a role
    }

    func postNotification(_ c: Call) {
        do throws(APIError) {
            let key = try idempotencyKey(c)
            let body = try RequestBody(c.request.body)
            let target = try Self.target(body.object("to"))
            let email = try body.choice("email", ["now", "fallback"], required: false).flatMap(EmailMode.init(rawValue:))
            // Refuse (422, nothing stored) rather than store for ids with no user.
            let strict = try body.bool("strict") ?? false
            let content = NotificationContent(
                service: try body.requiredChoice("service", Vocabulary.notificationServices),
                category: try body.requiredChoice("category", Vocabulary.notificationCategories),
                title: try body.requiredString("title", max: ContractLimits.maxTitle),
                body: try body.string("body", required: false, min: 0, max: ContractLimits.maxBody) ?? "",
                data: try body.dataObject("data", maxBytes: ContractLimits.maxDataBytes),
                email: email)
            let notifier = self.notifier, metrics = self.metrics
            switch target {
            case .users(let users):
                // A refusal is never kept under the key (it changed nothing); rendered all the
                // same so that `render` answers every outcome.
                let render: @Sendable (UserNotifications) -> StoredResponse = { outcome in
                    switch outcome {
                    case .stored(let list, let unknown):
                        StoredResponse(status: 201, body: String(decoding: JSONWriter.object { w in
                            w.key("ids"); w.beginArray(); for n in list { w.int(n.record.id) }; w.endArray()
                            w.key("unknown"); w.beginArray(); for u in unknown { w.string(u) }; w.endArray()
                        }, as: UTF8.self))
                    case .refused(let unknown):
                        StoredResponse(status: 422, body: String(decoding: Self.unknownUsersError(unknown), as: UTF8.self))
                    }
                }
                store.createNotifications(content, users: users, strict: strict, now: wallMillis(),
                                          emailDelayMs: notifier.emailDelayMs, claim: claim(key, c, render: render)) { result in
                    self.finish(c, result) { outcome in
                        switch outcome {
                        case .refused(let unknown):
                            c.json(.unprocessable, Self.unknownUsersError(unknown))
                        case .stored(let list, _):
                            metrics.notificationsStored.add(list.count, ordering: .relaxed)
                            c.stored(render(outcome), replayed: false)
                            notifier.notify(list)
                        }
                    }
                }
            case .audience(let audience):
                // Its recipients are the hub's own users of the role: none can be unknown, and
                // `strict` changes nothing.
                let render: @Sendable (FanoutStart) -> StoredResponse = { f in
                    StoredResponse(status: 201, body: String(decoding: JSONWriter.object { w in
                        w.key("count"); w.int(f.count)
                        w.key("unknown"); w.beginArray(); w.endArray()
                    }, as: UTF8.self))
                }
                store.startFanout(content, audience: audience, now: wallMillis(), claim: claim(key, c, render: render)) { result in
                    self.finish(c, result) { f in
                        c.stored(render(f), replayed: false)
                        notifier.run(fanout: f.id)
                    }
                }
            }
        } catch { c.fail(error) }
    }

    /// The strict refusal: `{"error": {code, message, unknown}}`, the message naming the first
    /// few ids, `unknown` all of them.
    static func unknownUsersError(_ unknown: [String]) -> [UInt8] {
        let shown = unknown.prefix(5).joined(separator: ", ") + (unknown.count > 5 ? ", …" : "")
        let message = "to.users: \(unknown.count) of the ids \(unknown.count == 1 ? "has" : "have") no user (\(shown)); "
            + "nothing was stored (strict). Create them with PUT /v1/users/{id}, or leave strict out to store anyway"
        return JSONWriter.object { w in
            w.key("error"); w.beginObject()
            w.key("code"); w.string(ErrorCode.notFound.rawValue)
            w.key("message"); w.string(message)
            w.key("unknown"); w.beginArray(); for u in unknown { w.string(u) }; w.endArray()
            w.endObject()
        }
    }

    /// `to`: exactly one of `users` (1–1000 ids), `role`, or `all: true`.
    static func target(_ to: JSONObject) throws(APIError) -> Target {
        let given = ["users", "role", "all"].filter { to[$0] != nil && to[$0]?.isNull == false }
        guard given.count == 1 else { throw .invalid("to", "must have exactly one of users, role or all") }
        switch given[0] {
        case "users":
            guard let list = to["users"]?.arrayValue, !list.isEmpty, list.count <= ContractLimits.maxRecipients else {
                throw .invalid("to.users", "must be an array of 1–\(ContractLimits.maxRecipients) user ids")
            }
            var users: [String] = []
            var seen = Set<String>()
            for item in list {
                guard let id = item.stringValue, UserID.isValid(id) else {
                    throw .invalid("to.users", "each must be a user id (1–64 of A-Za-z0-9_.@-)")
                }
                if seen.insert(id).inserted { users.append(id) }
            }
            return .users(users)
        case "role":
            guard let role = to["role"]?.stringValue, Vocabulary.roles.contains(role) else {
                throw .invalid("to.role", "must be one of \(Vocabulary.roles.joined(separator: ", "))")
            }
            return .audience(role)
        default:
            guard to["all"]?.boolValue == true else { throw .invalid("to.all", "must be true") }
            return .audience("all")
        }
    }

    func postBroadcast(_ c: Call) {
        do throws(APIError) {
            let key = try idempotencyKey(c)
            let body = try RequestBody(c.request.body)
            let audience = try body.requiredChoice("audience", ["all"] + Vocabulary.roles)
            let title = try body.requiredString("title", max: ContractLimits.maxTitle)
            let text = try body.string("body", required: false, min: 0, max: ContractLimits.maxBody) ?? ""
            let data = try body.dataObject("data", maxBytes: ContractLimits.maxDataBytes)
            let live = self.live
            // Counted before it is stored, so the first answer and its replay say the same.
            let online = live.onlineUsers(in: audience)
            let render: @Sendable (NotificationRecord) -> StoredResponse = { r in
                StoredResponse(status: 201, body: String(decoding: JSONWriter.object { w in
                    w.key("id"); w.int(r.id)
                    w.key("delivered_live"); w.int(online)
                }, as: UTF8.self))
            }
            store.createBroadcast(audience: audience, title: title, body: text, data: data, now: wallMillis(),
                                  claim: claim(key, c, render: render)) { result in
                self.finish(c, result) { record in
                    // Answered first: the answer is queued on its loop ahead of the 19,000
                    // pushes, so the caller does not wait for every socket to be written.
                    c.stored(render(record), replayed: false)
                    live.broadcast(record) // publishes and counts it
                }
            }
        } catch { c.fail(error) }
    }

    func userNotifications(_ c: Call, id raw: String) {
        do throws(APIError) {
            let user = try userID(raw)
            let query = try NotificationQuery.read { name throws(APIError) in c.query(name).flatMap { $0.isEmpty ? nil : JSON.string($0) } }
            store.notifications(for: user, query) { result in
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(let page): c.json(.ok, JSONWriter.object(capacity: 1024) { w in w.notificationPageFields(page) })
                }
            }
        } catch { c.fail(error) }
    }

    func notificationReceipt(_ c: Call, id raw: String) {
        guard let id = Int64(raw), id >= 1 else { return c.fail(APIError(.notFound, "no notification \(JSONText.quote(String(raw.prefix(40))))")) }
        store.receipt(id) { result in
            switch result {
            case .failure(let e): c.fail(.storage(e))
            case .success(nil): c.fail(APIError(.notFound, "no notification \(id)"))
            case .success(.some(let r)):
                c.json(.ok, JSONWriter.object(capacity: 512) { w in
                    w.notificationFields(r.record)
                    w.key("audience"); if let a = r.record.audience { w.string(a) } else { w.null() }
                    w.key("addressed"); w.int(r.addressed)
                    w.key("recipients"); w.beginArray()
                    for p in r.recipients {
                        w.beginObject()
                        w.key("user"); w.string(p.user)
                        w.key("stored"); w.bool(p.stored)
                        w.key("pushed"); w.bool(p.pushed)
                        w.key("read"); w.bool(p.read)
                        w.key("email"); if let e = p.email { w.string(e) } else { w.null() }
                        w.endObject()
                    }
                    w.endArray()
                })
            }
        }
    }
}
