import Core
import Persistence
import Protocol

// The admin ops for the console (docs/protocol.md "Admin ops"): admin.broadcast and admin.stats.
extension Session {
    func adminBroadcast(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard user.role == .admin else { return replyError(c, id, .forbidden, "admin.broadcast is for admins") }
        guard case .object(let object) = request else { return }
        // The same fields and rules as POST /v1/broadcasts.
        let params = Params<ParamError>(object: object)
        let audience: String, title: String, body: String
        do {
            audience = try params.choice("audience", ["all"] + Vocabulary.roles, required: false) ?? "all"
            title = try params.requiredString("title", max: ContractLimits.maxTitle)
            body = try params.string("body", required: false, min: 0, max: ContractLimits.maxBody) ?? ""
        } catch {
            return replyError(c, id, .badRequest, error.message)
        }
        let hop = hop(c)
        let chat = self.chat
        let deliveredLive = chat.online.count(in: audience) // counted as the bridge counts it: before
        inFlight += 1
        Log.info("admin_broadcast", ["user": user.id, "audience": audience])
        chat.notifications.createBroadcast(audience: audience, title: title, body: body, data: "{}", now: wallMillis(),
                                           claim: nil) { result in
            if case .success(.fresh(let record)) = result { chat.broadcast(record) }
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(.fresh(let record)):
                    s.reply(c, id) { w in
                        w.key("id"); w.int(record.id)
                        w.key("delivered_live"); w.int(deliveredLive)
                    }
                case .success(.replay), .success(.mismatch): break // no Idempotency-Key here: cannot happen
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    func adminStats(_ c: Connection, _ id: Int64, _ user: SessionUser) {
        guard user.role == .admin else { return replyError(c, id, .forbidden, "admin.stats is for admins") }
        let hop = hop(c)
        let live = chat.liveStats()
        let metrics = chat.metrics
        inFlight += 1
        chat.store.storedTotals { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let totals):
                    s.reply(c, id) { w in
                        w.liveStatsFields(live, metrics)
                        w.storedTotalsFields(totals)
                    }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    /// `admin.report`: the support report the bridge's GET /v1/reports/support answers.
    func adminReport(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard user.role == .admin else { return replyError(c, id, .forbidden, "admin.report is for admins") }
        let hop = hop(c)
        guard let service = optionalChoice(c, id, request, "service", Vocabulary.services) else { return }
        let from = optionalInt(request, "from"), to = optionalInt(request, "to")
        if (from.present && from.value == nil) || (to.present && to.value == nil) {
            return replyError(c, id, .badRequest, "from and to must be integers (ms since the epoch)")
        }
        let range: (from: Int64, to: Int64)
        switch SupportReport.range(from: from.value, to: to.value, now: wallMillis()) {
        case .success(let r): range = r
        case .failure(let refusal): return replyError(c, id, .badRequest, refusal.message)
        }
        inFlight += 1
        chat.store.supportEvents(from: range.from, to: range.to, service: service) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let events):
                    s.reply(c, id) { w in
                        w.key("service"); if let service { w.string(service) } else { w.null() }
                        w.supportReportFields(SupportReport(events, from: range.from, to: range.to))
                    }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }
}
