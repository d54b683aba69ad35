import Foundation
import Persistence
import Protocol
import XCTest
@testable import Hub

// Search over real sockets and a real SQLite file (docs/protocol.md "Search"): words and
// prefixes across the caller's conversations only, notes for staff only, edits and deletes at
// once, the bridge searching as a user, and refusals naming the field.
final class SearchTests: XCTestCase {
    var hub: TestHub!

    let data = TestDirectory.make("search")

    override func setUpWithError() throws { hub = try TestHub(configure: { [data] in $0.dataDir = data }) }
    override func tearDown() { hub.stop() }

    private func client(_ id: String, _ role: Role) throws -> ChatClient {
        try ChatClient(port: hub.port, token: TestHub.token(id, role))
    }

    @discardableResult
    private func send(_ c: ChatClient, _ channel: String, _ text: String, note: Bool = false) throws -> JSON {
        var params: JSONObject = ["channel": .string(channel), "text": .string(text), "client_msg_id": .string(UUID().uuidString)]
        if note { params["internal"] = .bool(true) }
        return try c.result("send", params)
    }

    private func search(_ c: ChatClient, _ query: String, _ more: JSONObject = [:]) throws -> JSON {
        var params = more
        params["query"] = .string(query)
        return try c.result("search", params)
    }

    private func texts(_ result: JSON) -> [String] {
        (result["items"]?.arrayValue ?? []).map { item in
            item["snippet"]?.stringValue?.replacingOccurrences(of: "<mark>", with: "").replacingOccurrences(of: "</mark>", with: "") ?? "?"
        }
    }

    /// Ann and Bob (clients), Wes serving Ann's website conversation only.
    private func seed() throws -> (ann: ChatClient, bob: ChatClient, wes: ChatClient, ada: ChatClient) {
        let ann = try client("ann", .client), bob = try client("bob", .client)
        try hub.assign("wes", to: "ann", for: "website")
        let wes = try client("wes", .websiteAgent), ada = try client("ada", .admin)
        try send(ann, "conv:website:ann", "My invoice for March is wrong")
        try send(ann, "conv:support:ann", "Where do I find invoices?")
        try send(bob, "conv:website:bob", "Bob's invoice number is 4471")
        try send(wes, "conv:website:ann", "Checking your invoice now")
        try send(wes, "conv:website:ann", "note: invoice was doubled by mistake", note: true)
        return (ann, bob, wes, ada)
    }

    func testAClientFindsByWordAndPrefixInItsOwnConversationsOnly() throws {
        let (ann, bob, _, _) = try seed()
        let found = try search(ann, "invoice")
        XCTAssertEqual(texts(found), ["Checking your invoice now", "Where do I find invoices?", "My invoice for March is wrong"],
                       "newest first, across Ann's services, no note, nothing of Bob's")
        XCTAssertEqual(found["more"]?.boolValue, false)
        let first = try XCTUnwrap(found["items"]?[0])
        XCTAssertEqual(first["channel"]?.stringValue, "conv:website:ann")
        XCTAssertEqual(first["seq"]?.intValue, 2)
        XCTAssertNotNil(first["msg_id"]?.intValue)
        XCTAssertEqual(first["from"]?["id"]?.stringValue, "wes")
        XCTAssertEqual(first["from"]?["role"]?.stringValue, "website_agent")
        XCTAssertEqual(first["snippet"]?.stringValue, "Checking your <mark>invoice</mark> now")
        XCTAssertNil(first["text"], "a snippet, not the message")
        XCTAssertEqual(texts(try search(ann, "INV mar")), ["My invoice for March is wrong"], "prefixes, every word, any case")
        XCTAssertEqual(texts(try search(bob, "invoice")), ["Bob's invoice number is 4471"], "Bob never sees Ann's")
        XCTAssertEqual(texts(try search(bob, "march")), [])
        XCTAssertEqual(texts(try search(ann, "4471")), [], "Ann never sees Bob's")
        XCTAssertEqual(texts(try search(ann, "invoice", ["channel": "conv:support:ann"])), ["Where do I find invoices?"])
        XCTAssertEqual(texts(try search(ann, "invoice", ["service": "website", "limit": 1])), ["Checking your invoice now"])
    }

    func testAnAgentSearchesItsAssignedConversationsWithNotesAndAnAdminEverything() throws {
        let (_, _, wes, ada) = try seed()
        let agent = try search(wes, "invoice")
        XCTAssertEqual(texts(agent), ["note: invoice was doubled by mistake", "Checking your invoice now", "My invoice for March is wrong"],
                       "the assigned conversation with its note; not Ann's support one, not Bob's")
        XCTAssertEqual(agent["items"]?[0]?["internal"]?.boolValue, true, "a note is marked")
        XCTAssertEqual(texts(try search(wes, "4471")), [], "an unassigned client's message")
        XCTAssertEqual(try wes.errorCode("search", ["query": "invoice", "channel": "conv:website:bob"]), "forbidden")
        XCTAssertEqual(try search(ada, "invoice")["items"]?.arrayValue?.count, 5, "an admin: everything, notes too")
        XCTAssertEqual(texts(try search(ada, "4471")), ["Bob's invoice number is 4471"])
        XCTAssertEqual(texts(try search(ada, "invoice", ["channel": "conv:website:bob"])), ["Bob's invoice number is 4471"])
    }

    func testAnEditAndADeleteAreReflectedAtOnce() throws {
        let ann = try client("ann", .client), ada = try client("ada", .admin)
        let sent = try send(ann, "conv:website:ann", "Pleese call me back")
        let seq = try XCTUnwrap(sent["seq"]?.intValue)
        try send(ann, "conv:website:ann", "my phone is 555 0199")
        _ = try ann.result("edit", ["channel": "conv:website:ann", "seq": .int(seq), "text": "Please call me back"])
        XCTAssertEqual(texts(try search(ann, "pleese")), [], "the old word is gone")
        XCTAssertEqual(texts(try search(ann, "please")), ["Please call me back"])
        _ = try ann.result("delete", ["channel": "conv:website:ann", "seq": .int(seq + 1)])
        XCTAssertEqual(texts(try search(ann, "phone")), [], "a deleted message is never found")
        XCTAssertEqual(texts(try search(ada, "555")), [])
    }

    func testPagesGoBackWithBefore() throws {
        let ann = try client("ann", .client)
        for i in 1...7 { try send(ann, "conv:website:ann", "ticket \(i)") }
        let first = try search(ann, "ticket", ["limit": 5])
        XCTAssertEqual(texts(first), ["ticket 7", "ticket 6", "ticket 5", "ticket 4", "ticket 3"])
        XCTAssertEqual(first["more"]?.boolValue, true)
        let last = try XCTUnwrap(first["items"]?[4]?["msg_id"]?.intValue)
        let second = try search(ann, "ticket", ["limit": 5, "before": .int(last)])
        XCTAssertEqual(texts(second), ["ticket 2", "ticket 1"])
        XCTAssertEqual(second["more"]?.boolValue, false)
    }

    func testTheBridgeSearchesAsAUser() throws {
        _ = try seed()
        let bridge = hub.bridge
        let asAnn = try bridge.get("/v1/search?query=invoice&user=ann")
        XCTAssertEqual(asAnn.status, 200, asAnn.text)
        XCTAssertEqual(texts(asAnn.json), ["Checking your invoice now", "Where do I find invoices?", "My invoice for March is wrong"])
        let asWes = try bridge.get("/v1/search?query=invoice&user=wes&limit=1")
        XCTAssertEqual(texts(asWes.json), ["note: invoice was doubled by mistake"])
        XCTAssertEqual(asWes.json["more"]?.boolValue, true)
        XCTAssertEqual(texts(try bridge.get("/v1/search?query=inv%20num&user=bob").json), ["Bob's invoice number is 4471"])
        XCTAssertEqual(texts(try bridge.get("/v1/search?query=invoice&user=ada&channel=conv%3Awebsite%3Abob").json),
                       ["Bob's invoice number is 4471"])
        XCTAssertEqual(try bridge.get("/v1/search?query=invoice&user=nobody").status, 404)
        XCTAssertEqual(try bridge.get("/v1/search?query=invoice").status, 400, "user is required")
        let badUser = try bridge.get("/v1/search?query=invoice&user=\(String(repeating: "u", count: 65))")
        XCTAssertEqual(badUser.status, 400, "a user id is checked before the store is asked: \(badUser.text)")
        XCTAssertTrue(badUser.errorMessage.hasPrefix("user must be"), badUser.text)
        XCTAssertEqual(try bridge.get("/v1/search?query=invoice&user=wes&channel=conv%3Awebsite%3Abob").status, 403)
        let noWord = try bridge.get("/v1/search?query=%21%21&user=ann")
        XCTAssertEqual(noWord.status, 400)
        XCTAssertTrue(noWord.errorMessage.contains("query"), noWord.text)
        XCTAssertEqual(try bridge.get("/v1/search?query=x&user=ann&limit=51").status, 400)
    }

    func testBadInputIsRefusedNamingTheField() throws {
        let ann = try client("ann", .client)
        func refusal(_ params: JSONObject) throws -> (String?, String?) {
            let r = try ann.request("search", params)
            return (r["error"]?["code"]?.stringValue, r["error"]?["message"]?.stringValue)
        }
        for (params, field) in [(["query": "..."], "query"), ([:], "query"), (["query": .int(3)], "query"),
                                (["query": .string(String(repeating: "a", count: 201))], "query"),
                                (["query": "a b c d e f g h i"], "query"),
                                (["query": "x", "limit": 0], "limit"), (["query": "x", "limit": 51], "limit"),
                                (["query": "x", "before": 0], "before"), (["query": "x", "service": "nope"], "service"),
                                (["query": "x", "channel": .int(1)], "channel")] as [(JSONObject, String)] {
            let (code, message) = try refusal(params)
            XCTAssertEqual(code, "bad_request", "\(params)")
            XCTAssertTrue(message?.hasPrefix(field) == true, "\(params): \(message ?? "")")
        }
        XCTAssertEqual(try refusal(["query": "x", "channel": "conv:website:bob"]).0, "forbidden")
        XCTAssertEqual(try refusal(["query": "x", "channel": "user:ann"]).0, "bad_request")
        XCTAssertEqual(try refusal(["query": .string(String(repeating: "a", count: 200))]).0, nil, "200 characters are allowed")
    }
}

// With `--search-index off` search answers `unavailable` (WebSocket) and 503 (bridge).
final class SearchOffTests: XCTestCase {
    func testSearchIsUnavailableWhenTheIndexIsOff() throws {
        let data = TestDirectory.make("search-off")
        let hub = try TestHub(configure: { $0.dataDir = data; $0.searchIndex = false })
        defer { hub.stop() }
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try ann.result("send", ["channel": "conv:website:ann", "text": "hello", "client_msg_id": "a1"])
        let r = try ann.request("search", ["query": "hello"])
        XCTAssertEqual(r["error"]?["code"]?.stringValue, "unavailable")
        XCTAssertTrue(r["error"]?["message"]?.stringValue?.contains("--search-index off") == true, r.text)
        XCTAssertEqual(try hub.bridge.get("/v1/search?query=hello&user=ann").status, 503)
    }
}
