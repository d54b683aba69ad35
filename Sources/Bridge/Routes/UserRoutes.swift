import Core
import Persistence
import Protocol

// PUT /v1/users/{id}, PUT and DELETE /v1/assignments/{service}/{clientId}.
extension BridgeAPI {
    func putUser(_ c: Call, id raw: String) {
        do throws(APIError) {
            let id = try userID(raw)
            let body = try RequestBody(c.request.body)
            // A bot is stored like any user and only ever speaks through the bridge (`as`).
            let role = try body.requiredChoice("role", Vocabulary.roles + [Vocabulary.botRole])
            let name = try body.displayName("name")
            let email = try body.string("email", required: false, max: 254)
            if let email, !RequestBody.isEmail(email) { throw APIError.invalid("email", "must be an email address") }
            let services = try body.services("services")
            let user = UserRecord(id: id, role: role, name: name, email: email, services: services)
            let store = self.store
            let live = self.live
            store.upsertUser(user, now: wallMillis()) { result in
                if case .success = result { live.userStored(id) }
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(let u) where u.email == nil:
                    // An absent email keeps the stored one: answer the user as recorded.
                    store.user(u.id) { stored in
                        let recorded = (try? stored.get()) ?? u
                        c.json(.ok, JSONWriter.object { w in Self.userFields(&w, recorded) })
                    }
                case .success(let u): c.json(.ok, JSONWriter.object { w in Self.userFields(&w, u) })
                }
            }
        } catch { c.fail(error) }
    }

    static func userFields(_ w: inout JSONWriter, _ u: UserRecord) {
        w.key("id"); w.string(u.id)
        w.key("role"); w.string(u.role)
        w.key("name"); w.string(u.name)
        w.key("email"); if let e = u.email { w.string(e) } else { w.null() }
        w.key("services")
        if let s = u.services { w.beginArray(); for x in s { w.string(x) }; w.endArray() } else { w.null() }
    }

    func putAssignment(_ c: Call, service: String, client: String) {
        do throws(APIError) {
            let key = try conversation(service, client)
            let body = try RequestBody(c.request.body)
            guard let agent = try body.string("agent_id", max: 64), UserID.isValid(agent) else {
                throw APIError.invalid("agent_id", "must be 1–64 of A-Za-z0-9_.@-")
            }
            let store = self.store, live = self.live
            // The roles decide: both users are read first, then the assignment is written.
            store.user(agent) { agentResult in
                store.user(key.clientId) { clientResult in
                    guard case .success(let agentUser) = agentResult, case .success(let clientUser) = clientResult else {
                        return c.fail(APIError(.serviceUnavailable, "storage unavailable", code: .unavailable))
                    }
                    guard let agentUser else {
                        return c.fail(APIError(.notFound, "no user \(agent); create the agent with PUT /v1/users/\(agent) first"))
                    }
                    if let why = AssignmentRule.refusal(agentID: agent, agentRole: agentUser.role, clientRole: clientUser?.role, key) {
                        return c.fail(APIError(.conflict, why))
                    }
                    // Whether it leaves the queue: read before the write that takes it out.
                    store.deskState(key) { desk in
                        let wasQueued = (try? desk.get())?.unassigned ?? false
                        store.setAssignment(Assignment(conversation: key, agentId: agent), now: wallMillis()) { result in
                        switch result {
                        case .failure(let e): c.fail(.storage(e))
                        case .success(let previous):
                            live.assignmentChanged(key, agent: agent, wasQueued: wasQueued)
                            c.json(.ok, JSONWriter.object { w in
                                Self.assignmentFields(&w, key, agent: agent)
                                w.key("previous_agent"); if let previous { w.string(previous) } else { w.null() }
                            })
                        }
                        }
                    }
                }
            }
        } catch { c.fail(error) }
    }

    func deleteAssignment(_ c: Call, service: String, client: String) {
        do throws(APIError) {
            let key = try conversation(service, client)
            let live = self.live, store = self.store
            store.removeAssignment(key) { result in
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(nil): c.fail(APIError(.notFound, "no assignment for \(key.channel)"))
                case .success(.some(let removed)):
                    // Back in the queue if its client wrote (the store queued it with the removal).
                    store.deskState(key) { desk in
                        live.assignmentChanged(key, agent: nil, wasQueued: (try? desk.get())?.unassigned ?? false)
                        c.json(.ok, JSONWriter.object { w in
                            Self.assignmentFields(&w, key, agent: nil)
                            w.key("removed_agent"); w.string(removed)
                        })
                    }
                }
            }
        } catch { c.fail(error) }
    }

    /// `{service, client, agents, agent_id}`: the `assignment` push's fields plus the agent.
    static func assignmentFields(_ w: inout JSONWriter, _ key: ConversationKey, agent: String?) {
        w.assignmentFields(key, agent: agent)
        w.key("agent_id"); if let agent { w.string(agent) } else { w.null() }
    }
}
