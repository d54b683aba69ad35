import Foundation
import Persistence
import Protocol
import XCTest
@testable import Hub

// Internal notes never reach a client, one test per path (push, history, subscribe since,
// the conversation list, notifications, unread counts), and reach agents and admins marked
// as notes. Real sockets and a real SQLite file.
final class InternalNoteTests: XCTestCase {
    var hub: TestHub!
    let channel = "conv:website:ann"
    let noteText = "Customer is on the legacy plan, do not offer the upgrade"

    override func setUpWithError() throws {
        hub = try TestHub()
        try hub.assign("wes", to: "ann", for: "website")
    }
    override func tearDown() { hub.stop() }

    private func client(_ id: String, _ role: Role) throws -> ChatClient {
        try ChatClient(port: hub.port, token: TestHub.token(id, role))
    }

    private func send(_ c: ChatClient, _ text: String, _ cmid: String, note: Bool = false) throws -> JSON {
        var params: JSONObject = ["channel": .string(channel), "text": .string(text), "client_msg_id": .string(cmid)]
        if note { params["internal"] = .bool(true) }
        return try c.result("send", params)
    }

    /// ann's message (seq 1), wes's note (seq 2), wes's reply (seq 3).
    private func conversationWithANote(_ ann: ChatClient, _ wes: ChatClient) throws {
        _ = try send(ann, "My invoice is wrong", "a1")
        XCTAssertEqual(try send(wes, noteText, "n1", note: true)["seq"]?.intValue, 2)
        _ = try send(wes, "Let me check that for you", "w1")
    }

    private func texts(_ list: JSON?) -> [String] { (list?.arrayValue ?? []).compactMap { $0["text"]?.stringValue } }

    func testOnlyAgentsAndAdminsMayWriteANote() throws {
        let ann = try client("ann", .client)
        XCTAssertEqual(try ann.errorCode("send", ["channel": .string(channel), "text": "x", "client_msg_id": "c", "internal": true]), "forbidden")
        XCTAssertEqual(try ann.errorCode("send", ["channel": .string(channel), "text": "x", "client_msg_id": "c", "internal": "yes"]), "bad_request")
        XCTAssertEqual(try ann.result("history", ["channel": .string(channel)])["messages"]?.arrayValue?.count, 0, "nothing stored")
        XCTAssertEqual(try send(try client("ada", .admin), "Admin note", "d1", note: true)["seq"]?.intValue, 1)
    }

    func testANoteIsNeverPushedToAClientButReachesStaffMarked() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent), ada = try client("ada", .admin)
        for c in [ann, wes, ada] { _ = try c.result("subscribe", ["channel": .string(channel)]) }
        try conversationWithANote(ann, wes)
        for staff in [wes, ada] {
            let seen = [try staff.push("message"), try staff.push("message"), try staff.push("message")]
            XCTAssertEqual(seen.map { $0["seq"]?.intValue }, [1, 2, 3])
            XCTAssertEqual(seen[1]["internal"]?.boolValue, true, "staff see it marked as a note")
            XCTAssertNil(seen[0]["internal"], "a message carries no mark")
        }
        let toClient = [try ann.push("message"), try ann.push("message")]
        XCTAssertEqual(toClient.map { $0["seq"]?.intValue }, [1, 3], "the note's seq passes unseen")
        XCTAssertTrue(ann.noPush("message", within: 0.5))
        XCTAssertFalse(toClient.contains { $0.text.contains("legacy plan") })
    }

    func testHistoryLeavesNotesOutForAClient() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent)
        try conversationWithANote(ann, wes)
        let forClient = try ann.result("history", ["channel": .string(channel)])
        XCTAssertEqual(texts(forClient["messages"]), ["My invoice is wrong", "Let me check that for you"])
        XCTAssertFalse(forClient.text.contains("legacy"))
        let forAgent = try wes.result("history", ["channel": .string(channel)])
        XCTAssertEqual(texts(forAgent["messages"]), ["My invoice is wrong", noteText, "Let me check that for you"])
        // Paging counts only what the client may read: the page before the reply skips the note.
        let page = try ann.result("history", ["channel": .string(channel), "before": 3, "limit": 1])
        XCTAssertEqual(texts(page["messages"]), ["My invoice is wrong"])
        XCTAssertEqual(page["more"]?.boolValue, false)
        XCTAssertEqual(texts(try wes.result("history", ["channel": .string(channel), "before": 3, "limit": 1])["messages"]), [noteText])
    }

    func testSubscribeSinceLeavesNotesOutForAClient() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent)
        try conversationWithANote(ann, wes)
        let again = try client("ann", .client)
        let r = try again.result("subscribe", ["channel": .string(channel), "since": 0])
        XCTAssertEqual(texts(r["messages"]), ["My invoice is wrong", "Let me check that for you"])
        XCTAssertEqual(try again.result("subscribe", ["channel": .string(channel), "since": 1])["messages"]?.arrayValue?.map { $0["seq"]?.intValue }, [3])
        let agent = try client("wes", .websiteAgent).result("subscribe", ["channel": .string(channel), "since": 1])
        XCTAssertEqual(agent["messages"]?.arrayValue?.map { $0["seq"]?.intValue }, [2, 3])
        // A note written while the client catches up live: counted as passed, never written.
        _ = try send(wes, "another note", "n2", note: true)
        _ = try send(wes, "Found it", "w2")
        XCTAssertEqual(try again.push("message")["seq"]?.intValue, 5)
    }

    func testTheConversationListNeverShowsAClientANoteAsItsLastMessageOrUnread() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent)
        _ = try send(ann, "My invoice is wrong", "a1")
        _ = try send(wes, noteText, "n1", note: true)
        let forClient = try ann.result("conversations")["conversations"]?.arrayValue?.first { $0["channel"]?.stringValue == channel }
        XCTAssertEqual(forClient?["last_message"]?["text"]?.stringValue, "My invoice is wrong")
        XCTAssertEqual(forClient?["unread"]?.intValue, 0, "a note is never unread for the client")
        let forAgent = try wes.result("conversations")["conversations"]?.arrayValue?.first
        XCTAssertEqual(forAgent?["last_message"]?["text"]?.stringValue, noteText)
        XCTAssertEqual(forAgent?["last_message"]?["internal"]?.boolValue, true)
    }

    func testANoteCreatesNoNotificationAndNoUnreadCountForTheClient() throws {
        let wes = try client("wes", .websiteAgent)
        // ann is offline: a message would notify her; the note must not.
        _ = try send(wes, noteText, "n1", note: true)
        let ann = try client("ann", .client)
        let list = try ann.result("notifications")
        XCTAssertEqual(list["items"]?.arrayValue?.count, 0, list.text)
        XCTAssertEqual(list["unread"]?["total"]?.intValue, 0)
        try ann.ws.close()
        // The control: the same conversation's message does notify her, and shows no note.
        _ = try send(wes, "Your invoice is fixed", "w1")
        let back = try client("ann", .client)
        let after = try back.result("notifications")
        XCTAssertEqual(after["items"]?.arrayValue?.count, 1)
        XCTAssertEqual(after["unread"]?["total"]?.intValue, 1)
        XCTAssertFalse(after.text.contains("legacy"), after.text)
    }
}
