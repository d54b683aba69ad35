import Foundation
import Persistence
import Protocol
import XCTest
@testable import Hub

// The bridge API over real sockets against an in-process hub with a real SQLite file: keys,
// validation, users and assignments, idempotent retries, tokens, stats and metrics.
final class BridgeTests: XCTestCase {
    var hub: TestHub!
    var bridge: BridgeClient { hub.bridge }

    override func setUpWithError() throws { hub = try TestHub() }
    override func tearDown() { hub.stop() }

    private func client(_ id: String, _ role: Role = .client) throws -> ChatClient {
        try ChatClient(port: hub.port, token: TestHub.token(id, role))
    }

    // MARK: keys, paths, bodies

    func testEveryV1RouteNeedsAValidBearerKeyAndEitherRotatedKeyWorks() throws {
        let none = try bridge.send("GET", "/v1/stats", key: nil)
        XCTAssertEqual(none.status, 401)
        XCTAssertEqual(none.json["error"]?["code"]?.stringValue, "unauthorized")
        XCTAssertEqual(none.headers["www-authenticate"], "Bearer")
        XCTAssertEqual(try bridge.send("GET", "/v1/stats", key: "bridge-key-0123456789abcdeX").status, 401)
        XCTAssertEqual(try bridge.send("GET", "/v1/stats", key: "short").status, 401)
        XCTAssertEqual(try bridge.send("GET", "/v1/stats", key: TestHub.bridgeKey).status, 200)
        XCTAssertEqual(try bridge.send("GET", "/v1/stats", key: TestHub.rotatedBridgeKey).status, 200)
        // Health and metrics stay open on the internal listener.
        XCTAssertEqual(try bridge.send("GET", "/healthz", key: nil).status, 200)
    }

    /// RFC 9112 §3.2.2: an absolute-form target (`GET http://host/path`) is served by its
    /// path, on both listeners, whatever the Host header says.
    func testAbsoluteFormTargetsAreServedByTheirPathOnBothListeners() throws {
        for port in [hub.bridgePort, hub.port] {
            let s = try TestSocket(port: port)
            try s.write("GET http://127.0.0.1:\(port)/healthz HTTP/1.1\r\nHost: not-the-hub.example\r\n\r\n")
            let r = try s.readHTTPResponse()
            XCTAssertEqual(r.status, 200, "port \(port): \(String(decoding: r.body, as: UTF8.self))")
            XCTAssertTrue(String(decoding: r.body, as: UTF8.self).contains("\"status\":\"ok\""))
            // The same connection serves the next (origin-form) request.
            try s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(try s.readHTTPResponse().status, 200)
        }
        // Routing, the key check and the query work as for origin-form.
        let stats = try bridge.get("HTTP://127.0.0.1:\(hub.bridgePort)/v1/stats")
        XCTAssertEqual(stats.status, 200, stats.text)
        XCTAssertEqual(try bridge.get("http://localhost/v1/users/ann/notifications?limit=0").status, 400, "the query is kept")
        XCTAssertEqual(try bridge.send("GET", "http://localhost/v1/stats", key: nil).status, 401)
        // Other forms: a clear refusal, then the connection closes.
        for raw in ["CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"] {
            let s = try TestSocket(port: hub.bridgePort)
            try s.write(raw)
            let r = try s.readHTTPResponse()
            XCTAssertEqual(r.status, 501, raw)
            XCTAssertTrue(s.waitForEOF(), raw)
        }
        for target in ["ftp://127.0.0.1/healthz", "http://user@127.0.0.1/healthz", "http:///healthz"] {
            XCTAssertEqual(try bridge.send("GET", target, key: nil).status, 400, target)
        }
    }

    func testUnknownPathsAre404AndWrongMethods405WithAllow() throws {
        let missing = try bridge.get("/v1/nothing/here")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.json["error"]?["code"]?.stringValue, "not_found")
        let wrong = try bridge.send("DELETE", "/v1/notifications")
        XCTAssertEqual(wrong.status, 405)
        XCTAssertEqual(wrong.headers["allow"], "POST")
        XCTAssertEqual(try bridge.send("PATCH", "/v1/users/ann", body: "{}").status, 405)
    }

    func testBadBodiesAre400Or422NamingTheField() throws {
        let notJSON = try bridge.post("/v1/notifications", "{not json")
        XCTAssertEqual(notJSON.status, 400, notJSON.text)
        XCTAssertEqual(try bridge.post("/v1/notifications", "[1,2]").status, 400)
        let noTitle = try bridge.post("/v1/notifications", #"{"to":{"users":["ann"]},"service":"wallet","category":"payments"}"#)
        XCTAssertEqual(noTitle.status, 422)
        XCTAssertTrue(noTitle.errorMessage.hasPrefix("title"), noTitle.text)
        let badCategory = try bridge.post("/v1/notifications", #"{"to":{"users":["ann"]},"service":"wallet","category":"gossip","title":"x"}"#)
        XCTAssertEqual(badCategory.status, 422)
        XCTAssertTrue(badCategory.errorMessage.hasPrefix("category"), badCategory.text)
        let twoTargets = try bridge.post("/v1/notifications", #"{"to":{"users":["ann"],"all":true},"service":"wallet","category":"payments","title":"x"}"#)
        XCTAssertEqual(twoTargets.status, 422)
        XCTAssertTrue(twoTargets.errorMessage.hasPrefix("to"), twoTargets.text)
        let badUser = try bridge.post("/v1/notifications", #"{"to":{"users":["no spaces"]},"service":"wallet","category":"payments","title":"x"}"#)
        XCTAssertEqual(badUser.status, 422)
        XCTAssertTrue(badUser.errorMessage.hasPrefix("to.users"), badUser.text)
        let badData = try bridge.post("/v1/notifications", #"{"to":{"users":["ann"]},"service":"wallet","category":"payments","title":"x","data":[1]}"#)
        XCTAssertEqual(badData.status, 422)
        XCTAssertTrue(badData.errorMessage.hasPrefix("data"), badData.text)
        let badRole = try bridge.put("/v1/users/ann", #"{"role":"boss","name":"Ann"}"#)
        XCTAssertEqual(badRole.status, 422)
        XCTAssertTrue(badRole.errorMessage.hasPrefix("role"), badRole.text)
        // One character, 1,801 bytes (combining marks): the size limit is in bytes too.
        let stacked = "a" + String(repeating: "\u{301}", count: 900)
        let heavy = try bridge.post("/v1/notifications", #"{"to":{"users":["ann"]},"service":"wallet","category":"payments","title":"\#(stacked)"}"#)
        XCTAssertEqual(heavy.status, 422, heavy.text)
        XCTAssertTrue(heavy.errorMessage.hasPrefix("title: must be at most 800 bytes"), heavy.text)
        XCTAssertEqual(try bridge.post("/v1/tokens", #"{"sub":"ann","role":"client","name":"\#(stacked)"}"#).status, 422,
                       "a name no token could carry")
        XCTAssertEqual(try bridge.get("/v1/users/ann/notifications?limit=0").status, 400)
        XCTAssertEqual(try bridge.get("/v1/users/ann/notifications?service=nope").status, 400)
    }

    func testBodyOverTheLimitIs413() throws {
        let big = "{\"title\":\"" + String(repeating: "x", count: 300 * 1024) + "\"}"
        let r = try bridge.post("/v1/notifications", big)
        XCTAssertEqual(r.status, 413)
        XCTAssertEqual(r.json["error"]?["code"]?.stringValue, "too_large")
    }

    // MARK: users and assignments

    func testUsersAndTheAssignmentRoleRules() throws {
        let put = try bridge.put("/v1/users/mara", #"{"role":"marketing_agent","name":"Mara","email":"mara@example.com"}"#)
        XCTAssertEqual(put.status, 200, put.text)
        XCTAssertEqual(put.json["role"]?.stringValue, "marketing_agent")
        XCTAssertEqual(put.json["email"]?.stringValue, "mara@example.com")
        try bridge.user("ann", "client")
        let wrongService = try bridge.put("/v1/assignments/website/ann", #"{"agent_id":"mara"}"#)
        XCTAssertEqual(wrongService.status, 409, "a marketing agent cannot serve website: \(wrongService.text)")
        try bridge.user("carl", "client")
        let notAnAgent = try bridge.put("/v1/assignments/support/ann", #"{"agent_id":"carl"}"#)
        XCTAssertEqual(notAnAgent.status, 409)
        XCTAssertEqual(try bridge.put("/v1/assignments/support/ann", #"{"agent_id":"ghost"}"#).status, 404)
        XCTAssertEqual(try bridge.put("/v1/assignments/gardening/ann", #"{"agent_id":"mara"}"#).status, 404)
        let ok = try bridge.put("/v1/assignments/support/ann", #"{"agent_id":"mara"}"#)
        XCTAssertEqual(ok.status, 200, ok.text)
        XCTAssertEqual(ok.json["agents"], ["mara"])
        // Every node's directory (with several nodes, the change reaches the others an event later).
        let key = ConversationKey(service: "support", clientId: "ann")
        XCTAssertTrue(eventually(5) { hub.servers.allSatisfy { $0.chat.directory.agent(for: key) == "mara" } })
    }

    func testAssignmentChangesPushAssignmentAndRevokeTheRemovedAgent() throws {
        try bridge.user("ann", "client")
        try bridge.user("mara", "marketing_agent")
        XCTAssertEqual(try bridge.put("/v1/assignments/support/ann", #"{"agent_id":"mara"}"#).status, 200)
        let ann = try client("ann")
        let mara = try client("mara", .marketingAgent)
        XCTAssertEqual(try mara.result("subscribe", ["channel": "conv:support:ann"])["last_seq"]?.intValue, 0)
        try bridge.user("mike", "marketing_agent")
        XCTAssertEqual(try bridge.put("/v1/assignments/support/ann", #"{"agent_id":"mike"}"#).status, 200)
        let pushed = try ann.push("assignment")
        XCTAssertEqual(pushed["service"]?.stringValue, "support")
        XCTAssertEqual(pushed["client"]?.stringValue, "ann")
        XCTAssertEqual(pushed["agents"], ["mike"])
        XCTAssertEqual(try mara.push("revoked")["channel"]?.stringValue, "conv:support:ann")
        XCTAssertEqual(try mara.errorCode("send", ["channel": "conv:support:ann", "text": "hi", "client_msg_id": "m1"]), "forbidden")
        let removed = try bridge.send("DELETE", "/v1/assignments/support/ann")
        XCTAssertEqual(removed.status, 200, removed.text)
        XCTAssertEqual(try ann.push("assignment")["agents"], [])
        XCTAssertEqual(try bridge.send("DELETE", "/v1/assignments/support/ann").status, 404)
    }

    // MARK: conversations

    func testSystemMessagesAreStoredPushedAndRetriedSafely() throws {
        let ann = try client("ann")
        _ = try ann.result("subscribe", ["channel": "conv:website:ann"])
        let first = try bridge.post("/v1/conversations/website/ann/messages", #"{"text":"Your site is live"}"#, idempotencyKey: "site-live-1")
        XCTAssertEqual(first.status, 201, first.text)
        XCTAssertEqual(first.json["from"]?["id"]?.stringValue, "system:montrose")
        XCTAssertEqual(first.json["from"]?["role"]?.stringValue, "system")
        XCTAssertEqual(first.json["seq"]?.intValue, 1)
        let live = try ann.push("message")
        XCTAssertEqual(live["text"]?.stringValue, "Your site is live")
        let retry = try bridge.post("/v1/conversations/website/ann/messages", #"{"text":"Your site is live"}"#, idempotencyKey: "site-live-1")
        XCTAssertEqual(retry.text, first.text, "a retry returns the first answer")
        XCTAssertEqual(retry.headers["idempotent-replayed"], "true")
        let page = try bridge.get("/v1/conversations/website/ann/messages?limit=10")
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.json["messages"]?.arrayValue?.count, 1, "stored once")
        let reused = try bridge.post("/v1/conversations/website/ann/messages", #"{"text":"Something else"}"#, idempotencyKey: "site-live-1")
        XCTAssertEqual(reused.status, 422, "same key, different message: \(reused.text)")
        XCTAssertEqual(try bridge.post("/v1/conversations/website/bob/messages", #"{"text":"x","client_msg_id":"c1"}"#).status, 201)
        XCTAssertEqual(try bridge.post("/v1/conversations/website/ann/messages", #"{"text":"x","client_msg_id":"c1"}"#).status, 409)
        XCTAssertEqual(try bridge.post("/v1/conversations/website/ann/messages", #"{"text":""}"#).status, 422)
        XCTAssertEqual(try bridge.get("/v1/conversations/gardening/ann/messages").status, 404)
        XCTAssertEqual(try bridge.get("/v1/conversations/website/ann/messages?before=0").status, 400)
    }

    // MARK: idempotency

    func testIdempotencyKeyReturnsTheFirstAnswerAndChangesNothing() throws {
        let body = #"{"to":{"users":["ann"]},"service":"wallet","category":"payments","title":"Top-up received"}"#
        let first = try bridge.post("/v1/notifications", body, idempotencyKey: "topup-42")
        XCTAssertEqual(first.status, 201, first.text)
        let again = try bridge.post("/v1/notifications", body, idempotencyKey: "topup-42")
        XCTAssertEqual(again.status, 201)
        XCTAssertEqual(again.text, first.text)
        XCTAssertEqual(again.headers["idempotent-replayed"], "true")
        let list = try bridge.get("/v1/users/ann/notifications")
        XCTAssertEqual(list.json["items"]?.arrayValue?.count, 1, "stored once: \(list.text)")
        let reused = try bridge.post("/v1/notifications", body.replacingOccurrences(of: "Top-up", with: "Refund"), idempotencyKey: "topup-42")
        XCTAssertEqual(reused.status, 422, "same key, different request: \(reused.text)")
        XCTAssertEqual(try bridge.post("/v1/notifications", body, idempotencyKey: String(repeating: "k", count: 300)).status, 400)
        // The key is kept in the database: a restarted hub still knows it.
        let token1 = try bridge.post("/v1/tokens", #"{"sub":"ann","role":"client","name":"Ann"}"#, idempotencyKey: "tok-1")
        let token2 = try bridge.post("/v1/tokens", #"{"sub":"ann","role":"client","name":"Ann"}"#, idempotencyKey: "tok-1")
        XCTAssertEqual(token1.text, token2.text)
    }

    // MARK: tokens, stats, metrics

    func testTokensMintedByTheBridgeAuthenticate() throws {
        let r = try bridge.post("/v1/tokens", #"{"sub":"ann","role":"client","name":"Ann","services":["website"],"ttl_s":120}"#)
        XCTAssertEqual(r.status, 201, r.text)
        let token = try XCTUnwrap(r.json["token"]?.stringValue)
        let exp = try XCTUnwrap(r.json["expires_at"]?.intValue)
        XCTAssertEqual(Double(exp), Date().timeIntervalSince1970 + 120, accuracy: 5)
        let ann = try ChatClient(port: hub.port, token: token)
        XCTAssertEqual(try ann.errorCode("subscribe", ["channel": "conv:marketing:ann"]), "forbidden", "services claim carried")
        XCTAssertEqual(try bridge.post("/v1/tokens", #"{"sub":"ann","role":"root","name":"Ann"}"#).status, 422)
        XCTAssertEqual(try bridge.post("/v1/tokens", #"{"sub":"ann","role":"client","name":"Ann","ttl_s":0}"#).status, 422)
    }

    func testStatsAndMetricsDescribeTheLiveHub() throws {
        let ann = try client("ann")
        let wes = try client("wes", .websiteAgent)
        try hub.assign("wes", to: "ann", for: "website")
        _ = try wes.result("send", ["channel": "conv:website:ann", "text": "hello", "client_msg_id": "s1"])
        _ = try ann.result("ping")
        let stats = try bridge.get("/v1/stats")
        XCTAssertEqual(stats.status, 200)
        XCTAssertEqual(stats.json["users_online"]?.intValue, 2, stats.text)
        XCTAssertEqual(stats.json["agents_online"]?.intValue, 1)
        // This process's sockets: with several nodes, the two clients are on two of them.
        XCTAssertGreaterThanOrEqual(stats.json["websockets"]?.intValue ?? 0, hub.topology.nodes == 1 ? 2 : 0)
        let today = stats.json["days"]?.arrayValue?.first { $0["service"]?.stringValue == "website" }
        XCTAssertEqual(today?["messages"]?.intValue, 1, stats.text)
        if hub.database == nil {
            // A few commits: the WAL is far from the checkpoint threshold (1,000 pages).
            XCTAssertEqual(stats.json["writer"]?["checkpoints"]?.intValue, 0, stats.text)
            XCTAssertEqual(stats.json["writer"]?["writer_checkpoints"]?.intValue, 0, stats.text)
        } else {
            // PostgreSQL's writers: nothing retried or reconnected on a healthy server.
            XCTAssertEqual(stats.json["writer"]?["retries"]?.intValue, 0, stats.text)
            XCTAssertEqual(stats.json["writer"]?["reconnects"]?.intValue, 0, stats.text)
        }
        let metrics = try bridge.send("GET", "/metrics", key: nil)
        XCTAssertEqual(metrics.status, 200)
        // This process's ops (with several nodes, the send may have been another node's).
        if hub.topology.nodes == 1 { XCTAssertTrue(metrics.text.contains("montrose_op_seconds_count{op=\"send\"} 1"), metrics.text) }
        XCTAssertTrue(metrics.text.contains("montrose_users_online{role=\"client\"} 1"))
        XCTAssertTrue(metrics.text.contains("montrose_outbox_pending "))
        XCTAssertTrue(metrics.text.contains("montrose_writer_batches_total "))
        if hub.database == nil {
            XCTAssertTrue(metrics.text.contains("montrose_db_checkpoints_total{by=\"checkpointer\"} 0\n"), metrics.text)
        } else {
            XCTAssertTrue(metrics.text.contains("montrose_pg_reconnects_total 0\n"), metrics.text)
        }
        XCTAssertTrue(metrics.text.contains("montrose_bridge_seconds_bucket{route=\"stats.get\""))
    }
}
