import Foundation
@testable import Persistence
import Protocol
import XCTest
@testable import Hub

// Edit and delete over real sockets (docs/protocol.md "Edit and delete"): pushes to every
// subscriber, history and `since` showing the current state, the window, who may do what,
// tombstones, notifications that quoted the text, the edit history admins read.
final class MessageEditTests: XCTestCase {
    var hub: TestHub!
    let channel = "conv:website:ann"

    override func setUpWithError() throws { try start(windowMs: ContractLimits.defaultEditWindowMs) }
    override func tearDown() { hub.stop() }

    private func start(windowMs: Int64) throws {
        hub = try TestHub(configure: { $0.editWindowMs = windowMs })
        try hub.assign("wes", to: "ann", for: "website")
    }

    private func client(_ id: String, _ role: Role) throws -> ChatClient {
        try ChatClient(port: hub.port, token: TestHub.token(id, role))
    }

    @discardableResult
    private func send(_ c: ChatClient, _ text: String, _ cmid: String, note: Bool = false) throws -> Int64 {
        var params: JSONObject = ["channel": .string(channel), "text": .string(text), "client_msg_id": .string(cmid)]
        if note { params["internal"] = .bool(true) }
        return try c.result("send", params)["seq"]?.intValue ?? -1
    }

    private func history(_ c: ChatClient) throws -> [JSON] {
        try c.result("history", ["channel": .string(channel)])["messages"]?.arrayValue ?? []
    }

    func testAnEditReachesEverySubscriberAndHistoryAndSinceShowTheNewText() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent), ada = try client("ada", .admin)
        for c in [ann, wes, ada] { _ = try c.result("subscribe", ["channel": .string(channel)]) }
        let seq = try send(ann, "My domian expired", "a1")
        let r = try ann.result("edit", ["channel": .string(channel), "seq": .int(seq), "text": "My domain expired"])
        XCTAssertEqual(r["seq"]?.intValue, seq)
        let editedAt = try XCTUnwrap(r["edited_at"]?.intValue)
        for c in [ann, wes, ada] {
            let u = try c.push("message.updated")
            XCTAssertEqual(u["channel"]?.stringValue, channel)
            XCTAssertEqual(u["seq"]?.intValue, seq)
            XCTAssertEqual(u["text"]?.stringValue, "My domain expired")
            XCTAssertEqual(u["edited_at"]?.intValue, editedAt)
        }
        let item = try XCTUnwrap(try history(wes).first)
        XCTAssertEqual(item["text"]?.stringValue, "My domain expired")
        XCTAssertEqual(item["edited_at"]?.intValue, editedAt)
        let late = try client("wes", .websiteAgent)
        let since = try late.result("subscribe", ["channel": .string(channel), "since": 0])["messages"]?.arrayValue ?? []
        XCTAssertEqual(since.first?["text"]?.stringValue, "My domain expired")
        XCTAssertEqual(since.first?["edited_at"]?.intValue, editedAt)
        // The same text again changes nothing and pushes nothing.
        _ = try ann.result("edit", ["channel": .string(channel), "seq": .int(seq), "text": "My domain expired"])
        XCTAssertTrue(wes.noPush("message.updated", within: 0.4))
    }

    func testADeleteReachesEverySubscriberAndLeavesATombstoneWithItsSeq() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent)
        for c in [ann, wes] { _ = try c.result("subscribe", ["channel": .string(channel)]) }
        _ = try send(ann, "first", "a1")
        let seq = try send(ann, "sent to the wrong person", "a2")
        _ = try send(ann, "third", "a3")
        XCTAssertEqual(try ann.result("delete", ["channel": .string(channel), "seq": .int(seq)])["seq"]?.intValue, seq)
        for c in [ann, wes] {
            let d = try c.push("message.deleted")
            XCTAssertEqual(d["seq"]?.intValue, seq)
            XCTAssertEqual(d["channel"]?.stringValue, channel)
        }
        let items = try history(wes)
        XCTAssertEqual(items.map { $0["seq"]?.intValue }, [1, 2, 3], "the seq stays: no gap")
        XCTAssertEqual(items[1]["deleted"]?.boolValue, true)
        XCTAssertNil(items[1]["text"], "a tombstone has no text")
        XCTAssertNil(items[0]["deleted"])
        let since = try client("ann", .client).result("subscribe", ["channel": .string(channel), "since": 1])["messages"]?.arrayValue ?? []
        XCTAssertEqual(since.first?["deleted"]?.boolValue, true)
        // Deleting again answers the same; editing a deleted message finds nothing.
        XCTAssertEqual(try ann.result("delete", ["channel": .string(channel), "seq": .int(seq)])["seq"]?.intValue, seq)
        XCTAssertEqual(try ann.errorCode("edit", ["channel": .string(channel), "seq": .int(seq), "text": "back"]), "not_found")
    }

    func testAnotherUsersMessageIsRefusedAndAnAdminMayDeleteButNotEdit() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent), ada = try client("ada", .admin)
        let seq = try send(ann, "hello", "a1")
        let edit: JSONObject = ["channel": .string(channel), "seq": .int(seq), "text": "changed"]
        XCTAssertEqual(try wes.errorCode("edit", edit), "forbidden")
        XCTAssertEqual(try wes.errorCode("delete", ["channel": .string(channel), "seq": .int(seq)]), "forbidden")
        XCTAssertEqual(try ada.errorCode("edit", edit), "forbidden", "an edit speaks for the sender: not even an admin")
        XCTAssertEqual(try history(wes).first?["text"]?.stringValue, "hello")
        XCTAssertEqual(try ada.result("delete", ["channel": .string(channel), "seq": .int(seq)])["seq"]?.intValue, seq)
        XCTAssertEqual(try history(wes).first?["deleted"]?.boolValue, true)
        // Unknown seq, a channel the caller may not read, bad params.
        XCTAssertEqual(try ann.errorCode("edit", ["channel": .string(channel), "seq": 99, "text": "x"]), "not_found")
        XCTAssertEqual(try ann.errorCode("delete", ["channel": "conv:website:bob", "seq": 1]), "forbidden")
        XCTAssertEqual(try ann.errorCode("edit", ["channel": .string(channel), "seq": 0, "text": "x"]), "bad_request")
        XCTAssertEqual(try ann.errorCode("edit", ["channel": .string(channel), "seq": "1", "text": "x"]), "bad_request")
        XCTAssertEqual(try ann.errorCode("edit", ["channel": .string(channel), "seq": 1, "text": "   "]), "bad_request")
        XCTAssertEqual(try ann.errorCode("edit", ["channel": .string(channel), "seq": 1, "text": .string(String(repeating: "x", count: 8_001))]), "too_large")
    }

    func testTheWindowIsEnforcedForTheSenderButNotForAnAdminsDelete() throws {
        hub.stop()
        try start(windowMs: 300)
        let ann = try client("ann", .client), ada = try client("ada", .admin)
        let seq = try send(ann, "quick", "a1")
        _ = try ann.result("edit", ["channel": .string(channel), "seq": .int(seq), "text": "quick fix"])
        Thread.sleep(forTimeInterval: 0.5)
        let refused = try ann.request("edit", ["channel": .string(channel), "seq": .int(seq), "text": "too late"])
        XCTAssertEqual(refused["error"]?["code"]?.stringValue, "forbidden")
        XCTAssertTrue(refused["error"]?["message"]?.stringValue?.contains("window") ?? false, refused.text)
        XCTAssertEqual(try ann.errorCode("delete", ["channel": .string(channel), "seq": .int(seq)]), "forbidden")
        XCTAssertEqual(try history(ann).first?["text"]?.stringValue, "quick fix")
        XCTAssertEqual(try ada.result("delete", ["channel": .string(channel), "seq": .int(seq)])["seq"]?.intValue, seq)
    }

    func testANotesEditAndDeleteNeverReachAClient() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent)
        for c in [ann, wes] { _ = try c.result("subscribe", ["channel": .string(channel)]) }
        let note = try send(wes, "VIP customer", "n1", note: true)
        _ = try wes.push("message")
        _ = try wes.result("edit", ["channel": .string(channel), "seq": .int(note), "text": "VIP customer, be kind"])
        XCTAssertEqual(try wes.push("message.updated")["internal"]?.boolValue, true)
        _ = try wes.result("delete", ["channel": .string(channel), "seq": .int(note)])
        _ = try wes.push("message.deleted")
        XCTAssertTrue(ann.noPush("message.updated", within: 0.3))
        XCTAssertTrue(ann.noPush("message.deleted", within: 0.1))
        XCTAssertFalse(ann.pushes.contains { $0.text.contains("VIP") })
        // A client cannot even learn that the note's seq is a message.
        XCTAssertEqual(try ann.errorCode("delete", ["channel": .string(channel), "seq": .int(note)]), "not_found")
    }

    func testAMessageNotificationShowsTheEditedTextAndADeletedOneNone() throws {
        let ann = try client("ann", .client)
        let seq = try send(ann, "Please call me at 555-0100", "a1") // wes is offline: a notification for him
        let wes = try client("wes", .websiteAgent)
        func body() throws -> String? { try wes.result("notifications")["items"]?.arrayValue?.first?["body"]?.stringValue }
        XCTAssertEqual(try body(), "Please call me at 555-0100")
        _ = try ann.result("edit", ["channel": .string(channel), "seq": .int(seq), "text": "Please call me at 555-0199"])
        // The send's own push may still reach wes (its notify can run after he connected): the
        // edit's is the one with the new words, within a second.
        var pushed = try wes.push("notification", timeout: 1)
        if pushed["body"]?.stringValue == "Please call me at 555-0100" { pushed = try wes.push("notification", timeout: 1) }
        XCTAssertEqual(pushed["body"]?.stringValue, "Please call me at 555-0199", "pushed again with the new words")
        XCTAssertEqual(try body(), "Please call me at 555-0199")
        _ = try ann.result("delete", ["channel": .string(channel), "seq": .int(seq)])
        XCTAssertEqual(try body(), "This message was deleted.")
        XCTAssertEqual(try wes.result("notifications")["unread"]?["total"]?.intValue, 1, "still unread: only its words changed")
    }

    func testAnAdminReadsTheEditHistoryAndADeleteErasesIt() throws {
        let ann = try client("ann", .client), ada = try client("ada", .admin)
        let seq = try send(ann, "one", "a1")
        _ = try ann.result("edit", ["channel": .string(channel), "seq": .int(seq), "text": "two"])
        _ = try ann.result("edit", ["channel": .string(channel), "seq": .int(seq), "text": "three"])
        let h = try ada.result("edits", ["channel": .string(channel), "seq": .int(seq)])
        XCTAssertEqual(h["message"]?["text"]?.stringValue, "three")
        XCTAssertEqual(h["edits"]?.arrayValue?.map { $0["text"]?.stringValue }, ["one", "two"])
        XCTAssertEqual(h["edits"]?.arrayValue?.first?["editor"]?.stringValue, "ann")
        XCTAssertEqual(try ann.errorCode("edits", ["channel": .string(channel), "seq": .int(seq)]), "forbidden")
        let viaBridge = try hub.bridge.get("/v1/conversations/website/ann/messages/\(seq)/edits")
        XCTAssertEqual(viaBridge.status, 200, viaBridge.text)
        XCTAssertEqual(viaBridge.json["edits"]?.arrayValue?.count, 2)
        _ = try ann.result("delete", ["channel": .string(channel), "seq": .int(seq)])
        XCTAssertEqual(try ada.result("edits", ["channel": .string(channel), "seq": .int(seq)])["edits"]?.arrayValue?.count, 0)
        XCTAssertEqual(try ada.errorCode("edits", ["channel": .string(channel), "seq": 42]), "not_found")
    }

    func testTheBridgeDeletesAMessageAtAnyTimeAndTheDeletionIsAudited() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent)
        _ = try wes.result("subscribe", ["channel": .string(channel)])
        let seq = try send(ann, "spam link", "a1")
        _ = try wes.push("message")
        let r = try hub.bridge.send("DELETE", "/v1/conversations/website/ann/messages/\(seq)?by=moderator7")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.json["deleted"]?.boolValue, true)
        XCTAssertEqual(try wes.push("message.deleted")["seq"]?.intValue, seq)
        XCTAssertEqual(try hub.bridge.send("DELETE", "/v1/conversations/website/ann/messages/77").status, 404)
        XCTAssertEqual(try hub.bridge.send("DELETE", "/v1/conversations/website/ann/messages/x1").status, 404)
        hub.stop(keepingStore: true) // flush the writer, then read the audit table
        let audited = "SELECT COUNT(*) FROM audit_log WHERE actor_id = 'moderator7' AND action = 'delete' AND target = '\(channel)#\(seq)'"
        if let database = hub.database {
            let db = try PGConnection(url: database.url)
            defer { db.close() }
            XCTAssertEqual(try db.query(audited).int(0, 0), 1)
        } else {
            let db = try SQLiteConnection(path: hub.server.configuration.dataDir + "/hub.sqlite", readOnly: true)
            XCTAssertEqual(try db.scalarText(audited), "1")
        }
        hub = try TestHub(loops: 1, database: hub.database)
    }
}
