import Foundation
import Persistence
import Protocol
import XCTest
@testable import Hub

// The support desk over real sockets and a real SQLite file (docs/protocol.md "Support
// desk"): the queue and who hears of it, claims, an admin's assignment, status, bots.
final class DeskTests: XCTestCase {
    var hub: TestHub!

    let data = TestDirectory.make("desk")

    override func setUpWithError() throws { hub = try TestHub(configure: { [data] in $0.dataDir = data }) }
    override func tearDown() { hub.stop() }

    private func client(_ id: String, _ role: Role) throws -> ChatClient {
        try ChatClient(port: hub.port, token: TestHub.token(id, role))
    }

    private func send(_ c: ChatClient, _ channel: String, _ text: String, _ cmid: String, note: Bool = false) throws -> JSON {
        var params: JSONObject = ["channel": .string(channel), "text": .string(text), "client_msg_id": .string(cmid)]
        if note { params["internal"] = .bool(true) }
        return try c.result("send", params)
    }

    // MARK: the queue

    func testAClientsFirstMessageReachesEveryOnlineEligibleUserAsAQueuePushWithinASecond() throws {
        let wes = try client("wes", .websiteAgent), mia = try client("mia", .marketingAgent), ada = try client("ada", .admin)
        let bob = try client("bob", .client)
        let sent = Date()
        _ = try send(bob, "conv:website:bob", "My site shows a 500 error", "b1")
        for (name, c) in [("wes", wes), ("ada", ada)] {
            let q = try c.push("queue", timeout: 1)
            XCTAssertLessThan(Date().timeIntervalSince(sent), 1, "\(name) told within a second")
            XCTAssertEqual(q["channel"]?.stringValue, "conv:website:bob", name)
            XCTAssertEqual(q["client"]?.stringValue, "bob")
            XCTAssertEqual(q["service"]?.stringValue, "website")
            XCTAssertEqual(q["unassigned"]?.boolValue, true)
            XCTAssertEqual(q["last_message"]?["text"]?.stringValue, "My site shows a 500 error")
        }
        XCTAssertTrue(mia.noPush("queue", within: 0.5), "a marketing agent cannot serve website")
        _ = try send(bob, "conv:website:bob", "Hello?", "b2")
        XCTAssertTrue(wes.noPush("queue", within: 0.5), "queued once, not on every message")
        let queue = try wes.result("conversations", ["queue": true])["conversations"]?.arrayValue ?? []
        XCTAssertEqual(queue.map { $0["channel"]?.stringValue }, ["conv:website:bob"])
        XCTAssertEqual(queue.first?["unassigned"]?.boolValue, true)
        XCTAssertEqual(try mia.result("conversations", ["queue": true])["conversations"]?.arrayValue?.count, 0)
        XCTAssertEqual(try bob.errorCode("conversations", ["queue": true]), "forbidden")
    }

    func testWhenNobodyEligibleIsOnlineTheyAreToldByNotification() throws {
        let bridge = hub.bridge
        try bridge.user("wes", "website_agent")
        try bridge.user("ada", "admin")
        try bridge.user("mia", "marketing_agent")
        let bob = try client("bob", .client)
        _ = try send(bob, "conv:website:bob", "Is anyone there?", "b1")
        for (id, role) in [("wes", Role.websiteAgent), ("ada", .admin)] {
            let c = try client(id, role)
            let list = try c.result("notifications")
            let items = list["items"]?.arrayValue ?? []
            XCTAssertEqual(items.count, 1, "\(id) has a notification: \(list.text)")
            XCTAssertEqual(items.first?["category"]?.stringValue, "messages")
            XCTAssertEqual(items.first?["data"]?["channel"]?.stringValue, "conv:website:bob", list.text)
            XCTAssertEqual(list["unread"]?["total"]?.intValue, 1)
        }
        XCTAssertEqual(try client("mia", .marketingAgent).result("notifications")["items"]?.arrayValue?.count, 0,
                       "only the roles that may take it")
    }

    func testTwoAgentsClaimingAtOnceExactlyOneWinsAndTheClientSeesTheAssignment() throws {
        let bob = try client("bob", .client)
        _ = try send(bob, "conv:website:bob", "Help with my domain", "b1")
        let wes = try client("wes", .websiteAgent), wendy = try client("wendy", .websiteAgent), ada = try client("ada", .admin)
        // Both claims on the wire before either is answered.
        for (c, id) in [(wes, Int64(900)), (wendy, 901)] {
            try c.ws.send(#"{"id":\#(id),"op":"claim","channel":"conv:website:bob"}"#)
        }
        let answers = [try wes.reply(to: 900), try wendy.reply(to: 901)]
        let won = answers.filter { $0["ok"]?.boolValue == true }
        let lost = answers.filter { $0["ok"]?.boolValue == false }
        XCTAssertEqual(won.count, 1, "\(answers.map(\.text))")
        XCTAssertEqual(lost.first?["error"]?["code"]?.stringValue, "conflict")
        let winner = try XCTUnwrap(won.first?["result"]?["agents"]?.arrayValue?.first?.stringValue)
        let assignment = try bob.push("assignment")
        XCTAssertEqual(assignment["agents"]?.arrayValue?.map(\.stringValue), [winner])
        XCTAssertEqual(assignment["service"]?.stringValue, "website")
        let gone = try ada.push("queue")
        XCTAssertEqual(gone["unassigned"]?.boolValue, false, "out of the queue for everyone")
        let agent = winner == "wes" ? wes : wendy
        XCTAssertEqual(try send(agent, "conv:website:bob", "On it", "w1")["seq"]?.intValue, 2, "the winner serves it")
        XCTAssertEqual(try (winner == "wes" ? wendy : wes).errorCode("history", ["channel": "conv:website:bob"]), "forbidden")
        XCTAssertEqual(try ada.errorCode("claim", ["channel": "conv:website:bob"]), "forbidden", "admins assign")
        XCTAssertEqual(try client("mia", .marketingAgent).errorCode("claim", ["channel": "conv:website:bob"]), "forbidden")
        try hub.bridge.user("ada", "admin")
        XCTAssertEqual(try agent.errorCode("claim", ["channel": "conv:website:ada"]), "conflict", "an admin's id names no client")
    }

    func testAnAdminAssignsAndTransfersUnderTheBridgesRules() throws {
        let bridge = hub.bridge
        try bridge.user("wes", "website_agent")
        try bridge.user("wendy", "website_agent")
        try bridge.user("mia", "marketing_agent")
        let bob = try client("bob", .client)
        _ = try send(bob, "conv:website:bob", "Hi", "b1")
        let ada = try client("ada", .admin)
        XCTAssertEqual(try ada.errorCode("assign", ["channel": "conv:website:bob", "agent_id": "nobody"]), "not_found")
        XCTAssertEqual(try ada.errorCode("assign", ["channel": "conv:website:bob", "agent_id": "mia"]), "conflict",
                       "a marketing agent cannot serve website")
        XCTAssertEqual(try ada.errorCode("assign", ["channel": "conv:website:bob", "agent_id": "a b"]), "bad_request")
        XCTAssertEqual(try client("wes", .websiteAgent).errorCode("assign", ["channel": "conv:website:bob", "agent_id": "wes"]), "forbidden")
        let first = try ada.result("assign", ["channel": "conv:website:bob", "agent_id": "wes"])
        XCTAssertEqual(first["agents"]?.arrayValue?.map(\.stringValue), ["wes"])
        XCTAssertEqual(first["previous_agent"], .null)
        XCTAssertEqual(try bob.push("assignment")["agents"]?.arrayValue?.map(\.stringValue), ["wes"])
        let wes = try client("wes", .websiteAgent)
        // On several nodes wes's may hear of the assignment a moment after ada's made it.
        XCTAssertTrue(eventually(3) { (try? wes.result("subscribe", ["channel": "conv:website:bob"])) != nil })
        let moved = try ada.result("assign", ["channel": "conv:website:bob", "agent_id": "wendy"])
        XCTAssertEqual(moved["previous_agent"]?.stringValue, "wes")
        XCTAssertEqual(try wes.push("revoked")["channel"]?.stringValue, "conv:website:bob", "the agent it was taken from loses it at once")
        XCTAssertEqual(try bob.push("assignment")["agents"]?.arrayValue?.map(\.stringValue), ["wendy"])
    }

    // MARK: status

    func testStatusChangesArePushedListedFilteredAndAClientsMessageReopens() throws {
        try hub.assign("wes", to: "ann", for: "website")
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent), ada = try client("ada", .admin)
        _ = try send(ann, "conv:website:ann", "The checkout page is blank", "a1")
        XCTAssertEqual(try ann.errorCode("conversation.status", ["channel": "conv:website:ann", "status": "resolved"]), "forbidden")
        XCTAssertEqual(try wes.errorCode("conversation.status", ["channel": "conv:website:ann", "status": "closed"]), "bad_request")
        XCTAssertEqual(try client("wendy", .websiteAgent).errorCode("conversation.status", ["channel": "conv:website:ann", "status": "resolved"]),
                       "forbidden", "only the assigned agent")
        let set = try wes.result("conversation.status", ["channel": "conv:website:ann", "status": "resolved"])
        XCTAssertEqual(set["status"]?.stringValue, "resolved")
        XCTAssertEqual(set["status_by"]?.stringValue, "wes")
        for c in [ann, wes, ada] {
            let pushed = try c.push("conversation")
            XCTAssertEqual(pushed["channel"]?.stringValue, "conv:website:ann")
            XCTAssertEqual(pushed["status"]?.stringValue, "resolved")
        }
        let listed = try wes.result("conversations", ["status": "resolved"])["conversations"]?.arrayValue ?? []
        XCTAssertEqual(listed.map { $0["channel"]?.stringValue }, ["conv:website:ann"])
        XCTAssertEqual(listed.first?["status_by"]?.stringValue, "wes")
        XCTAssertEqual(try wes.result("conversations", ["status": "open"])["conversations"]?.arrayValue?.count, 0)
        XCTAssertEqual(try wes.errorCode("conversations", ["status": "closed"]), "bad_request")
        _ = try send(ann, "conv:website:ann", "Sorry, it is blank again", "a2")
        let reopened = try wes.push("conversation")
        XCTAssertEqual(reopened["status"]?.stringValue, "open", "a client's message reopens it")
        XCTAssertEqual(reopened["status_by"]?.stringValue, "ann")
        XCTAssertEqual(try ada.push("conversation")["status"]?.stringValue, "open", "every admin's console hears it")
        XCTAssertEqual(try ann.result("conversations")["conversations"]?.arrayValue?.first?["status"]?.stringValue, "open")
        // The bridge sets it too.
        let put = try hub.bridge.put("/v1/conversations/website/ann/status", #"{"status":"pending"}"#)
        XCTAssertEqual(put.status, 200, put.text)
        XCTAssertEqual(put.json["status_by"]?.stringValue, "system:montrose")
        XCTAssertEqual(try ada.push("conversation")["status"]?.stringValue, "pending")
        XCTAssertEqual(try hub.bridge.put("/v1/conversations/website/ann/status", #"{"status":"done"}"#).status, 422)
    }

    // MARK: bots

    func testABotAnswersThroughTheBridgeAndIsNeverNotified() throws {
        let bridge = hub.bridge
        let bot = try bridge.put("/v1/users/course-tutor", #"{"role":"bot","name":"Course Tutor"}"#)
        XCTAssertEqual(bot.status, 200, bot.text)
        try hub.assign("wes", to: "ann", for: "courses")
        let ann = try client("ann", .client)
        _ = try ann.result("subscribe", ["channel": "conv:courses:ann"])
        _ = try send(ann, "conv:courses:ann", "What is lesson 3 about?", "a1")
        let answer = try bridge.post("/v1/conversations/courses/ann/messages", #"{"text":"Lesson 3 covers hosting.","as":"course-tutor"}"#)
        XCTAssertEqual(answer.status, 201, answer.text)
        XCTAssertEqual(answer.json["from"]?["role"]?.stringValue, "bot")
        XCTAssertEqual(answer.json["from"]?["name"]?.stringValue, "Course Tutor")
        _ = try ann.push("message")
        let pushed = try ann.push("message")
        XCTAssertEqual(pushed["from"]?["id"]?.stringValue, "course-tutor")
        XCTAssertEqual(pushed["from"]?["role"]?.stringValue, "bot")
        XCTAssertEqual(try bridge.post("/v1/conversations/courses/ann/messages", #"{"text":"x","as":"nobody"}"#).status, 404)
        try bridge.user("wes", "website_agent")
        XCTAssertEqual(try bridge.post("/v1/conversations/courses/ann/messages", #"{"text":"x","as":"wes"}"#).status, 409,
                       "only a bot may be spoken for")
        XCTAssertEqual(try bridge.get("/v1/users/course-tutor/notifications").json["items"]?.arrayValue?.count, 0,
                       "a bot is never notified")
        // A bot never holds a socket: no token names the role.
        XCTAssertEqual(try bridge.post("/v1/tokens", #"{"sub":"course-tutor","role":"bot","name":"Course Tutor"}"#).status, 422)
    }

    // MARK: reports

    func testTheSupportReportCountsACaseFromItsStoredEventsOnTheBridgeAndForAdmins() throws {
        let bob = try client("bob", .client)
        _ = try send(bob, "conv:website:bob", "Checkout fails", "b1")
        let wes = try client("wes", .websiteAgent)
        _ = try wes.result("claim", ["channel": "conv:website:bob"])
        Thread.sleep(forTimeInterval: 0.05) // a first response measurably after the opening
        _ = try send(wes, "conv:website:bob", "Fixed, try again", "w1")
        _ = try wes.result("conversation.status", ["channel": "conv:website:bob", "status": "resolved"])
        let answer = try hub.bridge.get("/v1/reports/support")
        XCTAssertEqual(answer.status, 200, answer.text)
        let r = answer.json
        XCTAssertEqual(r["total"]?["opened"]?.intValue, 1)
        XCTAssertEqual(r["total"]?["resolved"]?.intValue, 1)
        XCTAssertGreaterThanOrEqual(r["total"]?["first_response_ms"]?["median"]?.intValue ?? 0, 50)
        XCTAssertEqual(r["by_service"]?["website"]?["resolved"]?.intValue, 1)
        XCTAssertEqual(r["by_agent"]?["wes"]?["resolved"]?.intValue, 1)
        XCTAssertEqual(r["by_agent"]?["wes"]?["first_response_ms"]?["count"]?.intValue, 1)
        let queue = r["queue"]?.arrayValue ?? []
        XCTAssertEqual(queue.count, SupportReport.points)
        XCTAssertEqual(queue.map { $0["peak"]?.intValue ?? 0 }.max(), 1, "it waited in the queue")
        XCTAssertEqual(queue.last?["length"]?.intValue, 0, "and left it")
        XCTAssertEqual(try hub.bridge.get("/v1/reports/support?service=marketing").json["total"]?["opened"]?.intValue, 0)
        XCTAssertEqual(try hub.bridge.get("/v1/reports/support?service=nope").status, 400)
        XCTAssertEqual(try hub.bridge.get("/v1/reports/support?from=10&to=5").status, 400)
        let ada = try client("ada", .admin)
        XCTAssertEqual(try ada.result("admin.report")["total"]?["resolved"]?.intValue, 1)
        XCTAssertEqual(try wes.errorCode("admin.report"), "forbidden")
        // Stored events, not memory: a restarted hub reports the same.
        hub.stop(keepingStore: true)
        hub = try TestHub(database: hub.database, configure: { [data] in $0.dataDir = data })
        XCTAssertEqual(try hub.bridge.get("/v1/reports/support").json["total"]?["resolved"]?.intValue, 1)
    }
}
