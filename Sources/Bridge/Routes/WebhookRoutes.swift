import Persistence
import Protocol

// GET /v1/webhooks/deliveries: the recent webhook attempts, newest first.
extension BridgeAPI {
    static let defaultDeliveriesLimit: Int64 = 50
    static let maxDeliveriesLimit: Int64 = 200

    func getWebhookDeliveries(_ c: Call) {
        do throws(APIError) {
            let limit = try queryInt(c, "limit", 1...Self.maxDeliveriesLimit) ?? Self.defaultDeliveriesLimit
            let configured = settings.webhooksConfigured
            store.webhookDeliveries(limit: Int(limit)) { result in
                guard case .success(let list) = result else {
                    return c.fail(APIError(.serviceUnavailable, "storage unavailable", code: .unavailable))
                }
                c.json(.ok, JSONWriter.object(capacity: 256 + list.count * 160) { w in
                    w.key("configured"); w.bool(configured)
                    w.key("deliveries")
                    w.objects(list) { w, d in
                        w.key("event_id"); w.string(d.eventId)
                        w.key("type"); w.string(d.type)
                        w.key("attempt"); w.int(d.attempt)
                        w.key("ts"); w.int(d.ts)
                        w.key("status"); if let s = d.status { w.int(s) } else { w.null() }
                        w.key("error"); if let e = d.error { w.string(e) } else { w.null() }
                        w.key("duration_ms"); w.int(d.durationMs)
                        w.key("state"); w.string(d.state.rawValue)
                    }
                })
            }
        } catch { c.fail(error) }
    }
}
