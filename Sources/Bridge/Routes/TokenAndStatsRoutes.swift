import Foundation
import Core
import Persistence
import Protocol
import Synchronization

// POST /v1/tokens and GET /v1/stats.
extension BridgeAPI {
    static let defaultTokenTTL: Int64 = 3_600
    static let maxTokenTTL: Int64 = 7 * 86_400

    func postToken(_ c: Call) {
        do throws(APIError) {
            let key = try idempotencyKey(c)
            let body = try RequestBody(c.request.body)
            let sub = try body.requiredString("sub", max: 64)
            guard UserID.isValid(sub) else { throw APIError.invalid("sub", "must be 1–64 of A-Za-z0-9_.@-") }
            guard let role = Role(rawValue: try body.requiredChoice("role", Vocabulary.roles)) else { throw APIError.invalid("role", "unknown role") }
            let name = try body.displayName("name")
            let services = try body.services("services")
            let ttl = try body.int("ttl_s", 1...Self.maxTokenTTL) ?? Self.defaultTokenTTL
            let signer = self.signer
            let mint: @Sendable () -> StoredResponse = {
                let exp = wallMillis() / 1000 + ttl
                let token = signer.sign(TokenClaims(sub: sub, role: role, name: name, exp: exp, services: services))
                return StoredResponse(status: 201, body: String(decoding: JSONWriter.object { w in
                    w.key("token"); w.string(token)
                    w.key("expires_at"); w.int(exp)
                }, as: UTF8.self))
            }
            guard let claim = claim(key, c, render: { (r: StoredResponse) in r }) else {
                return c.stored(mint(), replayed: false)
            }
            store.once(claim, now: wallMillis(), make: mint) { result in
                self.finish(c, result) { r in c.stored(r, replayed: false) }
            }
        } catch { c.fail(error) }
    }

    func getStats(_ c: Call) {
        let live = self.live.liveStats()
        let store = self.store, metrics = self.metrics, statistics = store.statistics, smtp = settings.smtpConfigured
        let since = (wallMillis() / 86_400_000 - 6) * 86_400_000 // today and the six days before (UTC)
        store.userCounts { users in
            store.outboxCounts { outbox in
                store.dailyCounts(since: since) { days in
                    store.storedTotals { totals in
                        guard case .success(let users) = users, case .success(let outbox) = outbox, case .success(let days) = days,
                              case .success(let totals) = totals else {
                            return c.fail(APIError(.serviceUnavailable, "storage unavailable", code: .unavailable))
                        }
                        c.json(.ok, JSONWriter.object(capacity: 1024) { w in
                            w.liveStatsFields(live, metrics)
                            w.storedTotalsFields(totals)
                            w.key("users_by_role"); w.beginObject()
                            for role in Vocabulary.roles { w.key(role); w.int(users[role] ?? 0) }
                            w.endObject()
                            w.key("outbox"); w.beginObject()
                            w.key("pending"); w.int(outbox.pending)
                            w.key("sent"); w.int(outbox.sent)
                            w.key("failed"); w.int(outbox.failed)
                            w.key("skipped"); w.int(outbox.skipped)
                            w.key("smtp_configured"); w.bool(smtp)
                            w.endObject()
                            w.key("writer"); w.beginObject()
                            for e in statistics.entries { w.key(e.jsonKey); w.int(e.value) }
                            w.endObject()
                            w.key("days"); w.beginArray()
                            for d in days {
                                w.beginObject()
                                w.key("day"); w.string(d.day)
                                w.key("service"); w.string(d.service)
                                w.key("messages"); w.int(d.messages)
                                w.key("notifications"); w.int(d.notifications)
                                w.endObject()
                            }
                            w.endArray()
                        })
                    }
                }
            }
        }
    }
}
