import Core
import Persistence
import Protocol

// GET /v1/reports/support: the support desk's figures over a range (docs/protocol.md
// "Support reports").
extension BridgeAPI {
    func getSupportReport(_ c: Call) {
        do throws(APIError) {
            let from = try queryInt(c, "from", 0...Int64.max)
            let to = try queryInt(c, "to", 1...Int64.max)
            let asked = c.query("service").flatMap { $0.isEmpty ? nil : $0 }
            if let asked, !Vocabulary.serviceSet.contains(asked) {
                throw APIError(.badRequest, "service must be one of \(Vocabulary.services.joined(separator: ", "))")
            }
            let service = asked
            let range: (from: Int64, to: Int64)
            switch SupportReport.range(from: from, to: to, now: wallMillis()) {
            case .success(let r): range = r
            case .failure(let refusal): throw APIError(.badRequest, refusal.message)
            }
            store.supportEvents(from: range.from, to: range.to, service: service) { result in
                switch result {
                case .failure(let e): c.fail(.storage(e))
                case .success(let events):
                    let report = SupportReport(events, from: range.from, to: range.to)
                    c.json(.ok, JSONWriter.object(capacity: 2048) { w in
                        w.key("service"); if let service { w.string(service) } else { w.null() }
                        w.supportReportFields(report)
                    })
                }
            }
        } catch { c.fail(error) }
    }
}
