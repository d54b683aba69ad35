import Core
import Metrics
import Notifications
import Persistence
import Protocol

// The bridge's HTTP API (docs/protocol.md "Bridge API"): routing, bearer-key authentication,
// Idempotency-Key handling and the answer plumbing. The routes themselves live in Routes/.
// Pure request handling: no sockets. The hub's listener hands each request to `handle` and
// writes whatever `respond` is given (from any thread) back on the connection's loop.
public final class BridgeAPI: Sendable {
    public struct Settings: Sendable {
        public var keys: [String]
        public var jwtSecret: [UInt8]
        public var smtpConfigured = false
        public var webhooksConfigured = false
        public init(keys: [String], jwtSecret: [UInt8]) {
            self.keys = keys
            self.jwtSecret = jwtSecret
        }
    }

    public typealias Responder = @Sendable (HTTPResponse) -> Void
    public typealias FullStore = Store & NotificationStore & WebhookStore

    let store: FullStore
    let live: LiveHub
    let notifier: Notifier
    let metrics: HubMetrics
    let settings: Settings
    let keys: BearerKeys
    let signer: JWTSigner

    /// Longest Idempotency-Key accepted.
    static let maxIdempotencyKey = 255

    public init(store: FullStore, live: LiveHub, notifier: Notifier, metrics: HubMetrics, settings: Settings) {
        self.store = store
        self.live = live
        self.notifier = notifier
        self.metrics = metrics
        self.settings = settings
        keys = BearerKeys(settings.keys)
        signer = JWTSigner(secret: settings.jwtSecret)
    }

    /// One request in the bridge's hands: what was asked, and how to answer it (timed per route).
    struct Call: Sendable {
        let request: HTTPRequest
        let route: BridgeRoute
        let started: Int64
        let metrics: HubMetrics
        let responder: Responder

        func respond(_ r: HTTPResponse) {
            metrics.recordRoute(route.rawValue, micros: (monotonicMicros() - started))
            responder(r)
        }
        func fail(_ e: APIError) { respond(e.response) }
        func json(_ status: HTTPStatus, _ body: [UInt8]) {
            respond(HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: body))
        }
        func stored(_ s: StoredResponse, replayed: Bool) {
            var r = HTTPResponse(status: HTTPStatus.code(s.status), headers: [("Content-Type", "application/json")],
                                 body: Array(s.body.utf8))
            if replayed { r.headers.append(("Idempotent-Replayed", "true")) }
            respond(r)
        }
        func query(_ name: String) -> String? { request.query[name] }
    }

    public func handle(_ request: HTTPRequest, respond: @escaping Responder) {
        let rawPath = request.path
        var segments: [String] = []
        for part in rawPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            guard let decoded = HTTPRequest.percentDecode(part) else {
                return respond(APIError(.badRequest, "the path is not valid percent-encoding").response)
            }
            segments.append(decoded)
        }
        if segments.last == "" && segments.count > 1 { segments.removeLast() } // a trailing slash
        let method = request.method
        switch segments.first {
        case "healthz":
            guard segments.count == 1 else { break }
            guard method == "GET" || method == "HEAD" else { return respond(HTTPResponse.methodNotAllowed(allow: "GET, HEAD")) }
            return respond(.json(.ok, "{\"status\":\"ok\"}"))
        case "metrics":
            guard segments.count == 1 else { break }
            guard method == "GET" || method == "HEAD" else { return respond(HTTPResponse.methodNotAllowed(allow: "GET, HEAD")) }
            let text = metrics.prometheus(live: live.liveStats(), store: store.statistics)
            return respond(.text(.ok, text, contentType: "text/plain; version=0.0.4; charset=utf-8"))
        case "v1":
            guard keys.accepts(request.header("authorization")) else {
                Log.info("bridge_auth_failed", ["path": String(rawPath.prefix(80)),
                                                "reason": request.header("authorization") == nil ? "no key" : "wrong key"])
                return respond(APIError(.unauthorized, "a valid bridge key is required: Authorization: Bearer <key>").response)
            }
            return route(request, Array(segments.dropFirst()), respond)
        default:
            break
        }
        respond(APIError(.notFound, "no such path").response)
    }

    private func route(_ request: HTTPRequest, _ s: [String], _ respond: @escaping Responder) {
        let m = request.method
        func call(_ route: BridgeRoute) -> Call {
            Call(request: request, route: route, started: monotonicMicros(), metrics: metrics, responder: respond)
        }
        func allow(_ methods: String) { respond(HTTPResponse.methodNotAllowed(allow: methods)) }
        switch (s.count, s.first) {
        case (2, "users"):
            m == "PUT" ? putUser(call(.putUser), id: s[1]) : allow("PUT")
        case (3, "users") where s[2] == "notifications":
            m == "GET" ? userNotifications(call(.getUserNotifications), id: s[1]) : allow("GET")
        case (3, "assignments"):
            switch m {
            case "PUT": putAssignment(call(.putAssignment), service: s[1], client: s[2])
            case "DELETE": deleteAssignment(call(.deleteAssignment), service: s[1], client: s[2])
            default: allow("PUT, DELETE")
            }
        case (1, "notifications"):
            m == "POST" ? postNotification(call(.postNotification)) : allow("POST")
        case (2, "notifications"):
            m == "GET" ? notificationReceipt(call(.getNotification), id: s[1]) : allow("GET")
        case (1, "broadcasts"):
            m == "POST" ? postBroadcast(call(.postBroadcast)) : allow("POST")
        case (4, "conversations") where s[3] == "status":
            m == "PUT" ? putStatus(call(.putStatus), service: s[1], client: s[2]) : allow("PUT")
        case (4, "conversations") where s[3] == "messages":
            switch m {
            case "GET": getMessages(call(.getMessages), service: s[1], client: s[2])
            case "POST": postMessage(call(.postMessage), service: s[1], client: s[2])
            default: allow("GET, POST")
            }
        case (5, "conversations") where s[3] == "messages":
            m == "DELETE" ? deleteMessage(call(.deleteMessage), service: s[1], client: s[2], seq: s[4]) : allow("DELETE")
        case (6, "conversations") where s[3] == "messages" && s[5] == "edits":
            m == "GET" ? getMessageEdits(call(.getMessageEdits), service: s[1], client: s[2], seq: s[4]) : allow("GET")
        case (1, "tokens"):
            m == "POST" ? postToken(call(.postToken)) : allow("POST")
        case (2, "reports") where s[1] == "support":
            m == "GET" ? getSupportReport(call(.getSupportReport)) : allow("GET")
        case (2, "webhooks") where s[1] == "deliveries":
            m == "GET" ? getWebhookDeliveries(call(.getWebhookDeliveries)) : allow("GET")
        case (1, "stats"):
            m == "GET" ? getStats(call(.getStats)) : allow("GET")
        case (1, "search"):
            m == "GET" ? getSearch(call(.getSearch)) : allow("GET")
        default:
            respond(APIError(.notFound, "no such path").response)
        }
    }

    // MARK: idempotency

    /// The request's Idempotency-Key, checked (nil when absent).
    func idempotencyKey(_ c: Call) throws(APIError) -> String? {
        guard let key = c.request.header("idempotency-key") else { return nil }
        guard !key.isEmpty, key.utf8.count <= Self.maxIdempotencyKey,
              key.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw APIError(.badRequest, "Idempotency-Key must be 1–\(Self.maxIdempotencyKey) visible ASCII characters")
        }
        return key
    }

    /// A claim on the key for this request: method, path and a digest of the body identify it.
    func claim<T>(_ key: String?, _ c: Call, render: @escaping @Sendable (T) -> StoredResponse) -> IdempotencyClaim<T>? {
        guard let key else { return nil }
        let fingerprint = "\(c.request.method) \(c.request.path) \(c.request.body.count):\(Self.digest(c.request.body))"
        return IdempotencyClaim(key: key, fingerprint: fingerprint, render: render)
    }

    /// FNV-1a, 64 bits: tells a reused key's different request apart (not a security boundary:
    /// only holders of a bridge key can claim keys at all).
    static func digest(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return String(h, radix: 16)
    }

    /// Answers an idempotent store result: fresh → `fresh`, a replay → the stored first answer.
    func finish<T>(_ c: Call, _ result: Result<Idempotent<T>, StoreError>, fresh: (T) -> Void) {
        switch result {
        case .failure(let e): c.fail(.storage(e))
        case .success(.mismatch):
            c.fail(APIError(.unprocessable, "Idempotency-Key was already used for a different request", code: .conflict))
        case .success(.replay(let stored)): c.stored(stored, replayed: true)
        case .success(.fresh(let value)): fresh(value)
        }
    }

    // MARK: common parameters

    func userID(_ s: String, _ what: String = "user id") throws(APIError) -> String {
        guard UserID.isValid(s) else { throw APIError(.badRequest, "\(what) must be 1–64 of A-Za-z0-9_.@-") }
        return s
    }

    func conversation(_ service: String, _ client: String) throws(APIError) -> ConversationKey {
        guard Vocabulary.services.contains(service) else {
            throw APIError(.notFound, "no such service \(JSONText.quote(String(service.prefix(40)))); services are \(Vocabulary.services.joined(separator: ", "))")
        }
        return ConversationKey(service: service, clientId: try userID(client, "client id"))
    }

    /// An optional integer query parameter in `range` (400 naming it otherwise).
    func queryInt(_ c: Call, _ name: String, _ range: ClosedRange<Int64>) throws(APIError) -> Int64? {
        guard let raw = c.query(name), !raw.isEmpty else { return nil }
        guard let n = Int64(raw), range.contains(n) else {
            throw APIError(.badRequest, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }
}
