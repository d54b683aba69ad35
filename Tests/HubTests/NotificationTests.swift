import Foundation
import Core
import Persistence
import Protocol
import XCTest
@testable import Hub

// Notifications end to end over real sockets: posted through the bridge, stored in SQLite,
// pushed live with unread counts, listed and marked read over the WebSocket, broadcasts with
// per-user read state, role fan-outs, message notifications and receipts.
final class NotificationTests: XCTestCase {
    var hub: TestHub!
    var bridge: BridgeClient { hub.bridge }

    override func setUpWithError() throws { hub = try TestHub() }
    override func tearDown() { hub.stop() }

    private func client(_ id: String, _ role: Role = .client) throws -> ChatClient {
        try ChatClient(port: hub.port, token: TestHub.token(id, role))
    }

    private func notify(_ users: [String], service: String = "wallet", category: String = "payments",
                        title: String = "Payment received") throws -> [Int64] {
        let list = users.map { "\"\($0)\"" }.joined(separator: ",")
        let r = try bridge.post("/v1/notifications", """
            {"to":{"users":[\(list)]},"service":"\(service)","category":"\(category)","title":"\(title)","body":"$20","data":{"amount":20}}
            """)
        XCTAssertEqual(r.status, 201, r.text)
        return r.json["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
    }

    func testANotificationArrivesLiveOnEveryConnectionOfTheUserWithUnreadCounts() throws {
        let tab1 = try client("ann")
        let tab2 = try client("ann")
        let ids = try notify(["ann"])
        XCTAssertEqual(ids.count, 1)
        for tab in [tab1, tab2] {
            let n = try tab.push("notification")
            XCTAssertEqual(n["id"]?.intValue, ids[0])
            XCTAssertEqual(n["service"]?.stringValue, "wallet")
            XCTAssertEqual(n["category"]?.stringValue, "payments")
            XCTAssertEqual(n["title"]?.stringValue, "Payment received")
            XCTAssertEqual(n["data"]?["amount"]?.intValue, 20)
            XCTAssertEqual(n["read"]?.boolValue, false)
            let u = try tab.push("unread")
            XCTAssertEqual(u["total"]?.intValue, 1)
            XCTAssertEqual(u["by_service"]?["wallet"]?.intValue, 1)
        }
        _ = try notify(["ann"], service: "courses", category: "updates", title: "Lesson 3 unlocked")
        XCTAssertEqual(try tab1.push("unread")["total"]?.intValue, 2)
        XCTAssertEqual(try tab2.push("unread")["by_service"]?["courses"]?.intValue, 1)

        // Listed newest first, filtered, paged by id; marked read by ids and by service.
        let list = try tab1.result("notifications", ["limit": 1])
        XCTAssertEqual(list["items"]?.arrayValue?.first?["title"]?.stringValue, "Lesson 3 unlocked")
        XCTAssertEqual(list["more"]?.boolValue, true)
        XCTAssertEqual(list["unread"]?["total"]?.intValue, 2)
        let older = try tab1.result("notifications", ["before": list["items"]?[0]?["id"] ?? .null])
        XCTAssertEqual(older["items"]?.arrayValue?.map { $0["id"]?.intValue }, [ids[0]])
        let wallet = try tab1.result("notifications", ["service": "wallet"])
        XCTAssertEqual(wallet["items"]?.arrayValue?.count, 1)
        let read = try tab1.result("notifications.read", ["ids": [.int(ids[0])]])
        XCTAssertEqual(read["unread"]?["total"]?.intValue, 1)
        XCTAssertEqual(try tab2.push("unread")["total"]?.intValue, 1, "the other tab's bell follows")
        XCTAssertEqual(try tab1.result("notifications", ["unread_only": true])["items"]?.arrayValue?.count, 1)
        XCTAssertEqual(try tab1.result("notifications.read", ["all": true, "service": "courses"])["unread"]?["total"]?.intValue, 0)
        XCTAssertEqual(try tab1.errorCode("notifications.read", [:]), "bad_request")
        XCTAssertEqual(try tab1.errorCode("notifications", ["limit": 500]), "bad_request")
        // The bridge sees the same list.
        let viaBridge = try bridge.get("/v1/users/ann/notifications?unread_only=true")
        XCTAssertEqual(viaBridge.json["unread"]?["total"]?.intValue, 0, viaBridge.text)
    }

    // MARK: unknown user ids (a backend's typo must not go unnoticed)

    private func post(_ to: String, strict: Bool? = nil, title: String = "Top-up received",
                      idempotencyKey: String? = nil) throws -> BridgeClient.Answer {
        let strictField = strict.map { ",\"strict\":\($0)" } ?? ""
        return try bridge.post("/v1/notifications", """
            {"to":\(to),"service":"wallet","category":"payments","title":"\(title)"\(strictField)}
            """, idempotencyKey: idempotencyKey)
    }

    private func strings(_ v: JSON?) -> [String]? { v?.arrayValue?.map { $0.stringValue ?? "?" } }

    private func listed(_ user: String) throws -> Int {
        try bridge.get("/v1/users/\(user)/notifications").json["items"]?.arrayValue?.count ?? -1
    }

    func testNotificationsToUnknownUserIdsAreStoredAndTheAnswerNamesThem() throws {
        try bridge.user("ann", "client")
        let r = try post(#"{"users":["ann","ghost","ann","zed"]}"#)
        XCTAssertEqual(r.status, 201, r.text)
        XCTAssertEqual(r.json["ids"]?.arrayValue?.count, 3, "one per distinct user, unknown ones too: \(r.text)")
        XCTAssertEqual(strings(r.json["unknown"]), ["ghost", "zed"], "the ids the hub has no user for, in the order given: \(r.text)")
        XCTAssertEqual(try listed("ghost"), 1, "kept for a user the backend has not synced yet")
        let known = try post(#"{"users":["ann"]}"#)
        XCTAssertEqual(known.status, 201, known.text)
        XCTAssertEqual(strings(known.json["unknown"]), [], "always present, empty when every id is known: \(known.text)")
        // A user who has connected with a token is known too (their claims are recorded on
        // connect, through the same writer, ahead of the POST).
        _ = try client("carl")
        if hub.topology.nodes > 1 {
            // Recorded by the node carl reached: another node's POST sees it once committed.
            let store = hub.server.store
            XCTAssertTrue(eventually(5) { (try? waitForStore { store.user("carl", completion: $0) }.get()) != nil })
        }
        XCTAssertEqual(strings(try post(#"{"users":["carl"]}"#).json["unknown"]), [])
    }

    func testStrictRefusesUnknownUserIdsWith422NamingThemAndStoresNothing() throws {
        try bridge.user("ann", "client")
        let ann = try client("ann")
        let r = try post(#"{"users":["ann","ghost","zed"]}"#, strict: true)
        XCTAssertEqual(r.status, 422, r.text)
        XCTAssertEqual(r.json["error"]?["code"]?.stringValue, "not_found", r.text)
        XCTAssertEqual(strings(r.json["error"]?["unknown"]), ["ghost", "zed"], r.text)
        XCTAssertTrue(r.errorMessage.contains("ghost") && r.errorMessage.contains("zed"), r.text)
        XCTAssertEqual(try listed("ann"), 0, "nothing stored, not even for the known user")
        XCTAssertEqual(try listed("ghost"), 0)
        XCTAssertTrue(ann.noPush("notification", within: 0.3), "nothing pushed")
        // All known: stored as usual.
        let ok = try post(#"{"users":["ann"]}"#, strict: true)
        XCTAssertEqual(ok.status, 201, ok.text)
        XCTAssertEqual(strings(ok.json["unknown"]), [])
        XCTAssertEqual(try ann.push("notification")["id"]?.intValue, ok.json["ids"]?[0]?.intValue)
        // strict: false is the default; anything but a boolean is refused.
        XCTAssertEqual(try post(#"{"users":["ghost"]}"#, strict: false).status, 201)
        let bad = try bridge.post("/v1/notifications",
                                  #"{"to":{"users":["ann"]},"service":"wallet","category":"payments","title":"x","strict":"yes"}"#)
        XCTAssertEqual(bad.status, 422, bad.text)
        XCTAssertTrue(bad.errorMessage.hasPrefix("strict"), bad.text)
    }

    func testStrictCheckCoversAThousandIdsAndKeepsTheMessageShort() throws {
        try bridge.user("u0", "client")
        let ids = (0..<1_000).map { "\"u\($0)\"" }.joined(separator: ",")
        let r = try post(#"{"users":[\#(ids)]}"#, strict: true)
        XCTAssertEqual(r.status, 422, r.text)
        let unknown = strings(r.json["error"]?["unknown"]) ?? []
        XCTAssertEqual(unknown.count, 999, "every unknown id is listed")
        XCTAssertEqual(unknown.first, "u1")
        XCTAssertEqual(unknown.last, "u999")
        XCTAssertLessThan(r.errorMessage.utf8.count, 1_000, "the message names a few; the list has them all")
    }

    func testIdempotentRetriesReturnTheFirstAnswerAndAStrictRefusalIsNotKept() throws {
        let first = try post(#"{"users":["ghost"]}"#, idempotencyKey: "n-1")
        XCTAssertEqual(first.status, 201, first.text)
        XCTAssertEqual(strings(first.json["unknown"]), ["ghost"])
        try bridge.user("ghost", "client")
        let replay = try post(#"{"users":["ghost"]}"#, idempotencyKey: "n-1")
        XCTAssertEqual(replay.text, first.text, "the first answer, unknown list included, even though ghost is known now")
        XCTAssertEqual(replay.headers["idempotent-replayed"], "true")
        XCTAssertEqual(try listed("ghost"), 1, "stored once")

        // A strict refusal changed nothing and is not kept under the key: once the backend
        // has synced the user, the same request with the same key goes through.
        let refused = try post(#"{"users":["newbie"]}"#, strict: true, idempotencyKey: "n-2")
        XCTAssertEqual(refused.status, 422, refused.text)
        XCTAssertNil(refused.headers["idempotent-replayed"])
        try bridge.user("newbie", "client")
        let retried = try post(#"{"users":["newbie"]}"#, strict: true, idempotencyKey: "n-2")
        XCTAssertEqual(retried.status, 201, retried.text)
        XCTAssertEqual(strings(retried.json["unknown"]), [])
        XCTAssertNil(retried.headers["idempotent-replayed"])
        let again = try post(#"{"users":["newbie"]}"#, strict: true, idempotencyKey: "n-2")
        XCTAssertEqual(again.text, retried.text)
        XCTAssertEqual(again.headers["idempotent-replayed"], "true")
        XCTAssertEqual(try listed("newbie"), 1)
    }

    func testRoleAndEveryoneTargetsHaveNoUnknownIdsStrictOrNot() throws {
        try bridge.user("ann", "client")
        for (to, strict) in [(#"{"role":"client"}"#, false), (#"{"role":"admin"}"#, true), (#"{"all":true}"#, true)] {
            let r = try post(to, strict: strict)
            XCTAssertEqual(r.status, 201, "\(to): \(r.text)")
            XCTAssertNotNil(r.json["count"]?.intValue, r.text)
            XCTAssertEqual(strings(r.json["unknown"]), [], "\(to): the audience is the hub's own users: \(r.text)")
        }
    }

    func testBroadcastsAreStoredOnceWithReadStatePerUser() throws {
        for (id, role) in [("ann", "client"), ("bob", "client"), ("wes", "website_agent")] { try bridge.user(id, role) }
        let ann = try client("ann")
        let wes = try client("wes", .websiteAgent)
        let r = try bridge.post("/v1/broadcasts", #"{"audience":"client","title":"Maintenance tonight","body":"22:00 UTC"}"#)
        XCTAssertEqual(r.status, 201, r.text)
        let id = try XCTUnwrap(r.json["id"]?.intValue)
        XCTAssertEqual(r.json["delivered_live"]?.intValue, 1, "ann is the one client online")
        let pushed = try ann.push("broadcast")
        XCTAssertEqual(pushed["id"]?.intValue, id)
        XCTAssertEqual(pushed["title"]?.stringValue, "Maintenance tonight")
        XCTAssertTrue(wes.noPush("broadcast", within: 0.3), "agents are not in the audience")
        // One row, not one per user.
        let rows = try waitForStore { done in
            hub.server.store.receipt(id) { done($0) }
        }.get()
        XCTAssertEqual(rows?.addressed, 2)

        let annList = try ann.result("notifications")
        XCTAssertEqual(annList["items"]?[0]?["id"]?.intValue, id)
        XCTAssertEqual(annList["items"]?[0]?["broadcast"]?.boolValue, true)
        XCTAssertEqual(annList["unread"]?["by_service"]?["platform"]?.intValue, 1)
        XCTAssertEqual(try wes.result("notifications")["items"]?.arrayValue?.count, 0)
        XCTAssertEqual(try ann.result("notifications.read", ["ids": [.int(id)]])["unread"]?["total"]?.intValue, 0)
        let bobList = try bridge.get("/v1/users/bob/notifications")
        XCTAssertEqual(bobList.json["items"]?[0]?["read"]?.boolValue, false, "bob has not read it: \(bobList.text)")
        XCTAssertEqual(bobList.json["unread"]?["total"]?.intValue, 1)
        XCTAssertEqual(try ann.result("notifications")["items"]?[0]?["read"]?.boolValue, true)

        // The receipt: addressed to two clients, pushed to and read by ann.
        let receipt = try receiptOncePushed(id, to: "ann")
        XCTAssertEqual(receipt.status, 200)
        XCTAssertEqual(receipt.json["addressed"]?.intValue, 2)
        let annState = receipt.json["recipients"]?.arrayValue?.first { $0["user"]?.stringValue == "ann" }
        XCTAssertEqual(annState?["pushed"]?.boolValue, true, receipt.text)
        XCTAssertEqual(annState?["read"]?.boolValue, true)
    }

    /// The notification's receipt once `user`'s push is recorded (receipts are stored in
    /// batches a moment after the push is written; this waits at most 5 s for it).
    private func receiptOncePushed(_ id: Int64, to user: String) throws -> BridgeClient.Answer {
        let deadline = Date().addingTimeInterval(5)
        while true {
            let r = try bridge.get("/v1/notifications/\(id)")
            let state = r.json["recipients"]?.arrayValue?.first { $0["user"]?.stringValue == user }
            if state?["pushed"]?.boolValue == true || Date() > deadline { return r }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    func testReceiptsTellStoredPushedAndReadPerRecipient() throws {
        let ann = try client("ann")
        let ids = try notify(["ann", "carl"])
        _ = try ann.push("notification")
        let annReceipt = try receiptOncePushed(ids[0], to: "ann")
        XCTAssertEqual(annReceipt.json["recipients"]?[0]?["user"]?.stringValue, "ann")
        XCTAssertEqual(annReceipt.json["recipients"]?[0]?["stored"]?.boolValue, true)
        XCTAssertEqual(annReceipt.json["recipients"]?[0]?["pushed"]?.boolValue, true, annReceipt.text)
        XCTAssertEqual(annReceipt.json["recipients"]?[0]?["read"]?.boolValue, false)
        let carlReceipt = try bridge.get("/v1/notifications/\(ids[1])")
        XCTAssertEqual(carlReceipt.json["recipients"]?[0]?["pushed"]?.boolValue, false, "carl was offline")
        _ = try ann.result("notifications.read", ["all": true])
        XCTAssertEqual(try bridge.get("/v1/notifications/\(ids[0])").json["recipients"]?[0]?["read"]?.boolValue, true)
        XCTAssertEqual(try bridge.get("/v1/notifications/999999").status, 404)
        XCTAssertEqual(try bridge.get("/v1/notifications/abc").status, 404)
    }

    func testRoleFanOutReachesEveryUserOfTheRoleInChunks() throws {
        // 1,250 clients (three chunks of 500) and a few agents who must not get it.
        let store = hub.server.store
        for i in 0..<1_250 {
            store.upsertUser(UserRecord(id: "c\(i)", role: "client", name: "C\(i)"), now: 1) { _ in }
        }
        _ = try waitForStore { store.upsertUser(UserRecord(id: "wes", role: "website_agent", name: "Wes"), now: 1, completion: $0) }.get()
        let online = try client("c7")
        let r = try bridge.post("/v1/notifications", #"{"to":{"role":"client"},"service":"platform","category":"updates","title":"New course catalogue"}"#)
        XCTAssertEqual(r.status, 201, r.text)
        XCTAssertEqual(r.json["count"]?.intValue, 1_250)
        XCTAssertEqual(try online.push("notification")["title"]?.stringValue, "New course catalogue")
        XCTAssertEqual(try online.push("unread")["total"]?.intValue, 1)
        let deadline = Date().addingTimeInterval(10)
        while try bridge.get("/v1/users/c1249/notifications").json["items"]?.arrayValue?.count != 1 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertEqual(try bridge.get("/v1/users/c1249/notifications").json["items"]?.arrayValue?.count, 1, "the last chunk arrived")
        XCTAssertEqual(try bridge.get("/v1/users/c0/notifications").json["unread"]?["total"]?.intValue, 1)
        XCTAssertEqual(try bridge.get("/v1/users/wes/notifications").json["items"]?.arrayValue?.count, 0, "agents are not clients")
    }

    func testMessageNotificationsAreOnePerConversationUpdatedAndClearedByRead() throws {
        try hub.assign("wes", to: "ann", for: "website")
        let ann = try client("ann") // online, but not watching the conversation
        let wes = try client("wes", .websiteAgent)
        _ = try wes.result("subscribe", ["channel": "conv:website:ann"])
        var ids: Set<Int64> = []
        func notificationsStored() throws -> Int64? { try bridge.get("/v1/stats").json["notifications_stored"]?.intValue }
        let storedBefore = try notificationsStored()
        for i in 1...3 {
            _ = try wes.result("send", ["channel": "conv:website:ann", "text": .string("update \(i)"), "client_msg_id": .string("w\(i)")])
            let n = try ann.push("notification")
            // A WebSocket send counts the notifications it writes, as a bridge post does (a
            // count of this process: with several nodes, of the node the bridge call reached).
            if hub.topology.nodes == 1 { XCTAssertEqual(try notificationsStored(), storedBefore.map { $0 + Int64(i) }) }
            XCTAssertEqual(n["category"]?.stringValue, "messages")
            XCTAssertEqual(n["service"]?.stringValue, "website")
            XCTAssertEqual(n["data"]?["channel"]?.stringValue, "conv:website:ann")
            XCTAssertEqual(n["data"]?["count"]?.intValue, Int64(i))
            XCTAssertEqual(n["body"]?.stringValue, "update \(i)")
            ids.insert(n["id"]?.intValue ?? 0)
            XCTAssertEqual(try ann.push("unread")["total"]?.intValue, 1, "still one notification for the conversation")
        }
        XCTAssertEqual(ids.count, 1, "later messages update the same notification")
        XCTAssertEqual(try ann.result("notifications")["items"]?.arrayValue?.count, 1)
        // Reading the conversation clears it, on every connection.
        _ = try ann.result("subscribe", ["channel": "conv:website:ann"])
        _ = try ann.result("read", ["channel": "conv:website:ann", "seq": 3])
        XCTAssertEqual(try ann.push("unread")["total"]?.intValue, 0)
        // While she watches, new messages create no notification; wes, subscribed, gets none either.
        _ = try wes.result("send", ["channel": "conv:website:ann", "text": "seen live", "client_msg_id": "w4"])
        XCTAssertEqual(try ann.push("message")["text"]?.stringValue, "seen live")
        XCTAssertTrue(ann.noPush("notification", within: 0.3))
        _ = try ann.result("unsubscribe", ["channel": "conv:website:ann"])
        _ = try ann.result("send", ["channel": "conv:website:ann", "text": "thanks", "client_msg_id": "a1"])
        XCTAssertTrue(wes.noPush("notification", within: 0.3), "wes is subscribed: no notification")
        // An offline agent gets one, waiting in his list.
        _ = try wes.result("unsubscribe", ["channel": "conv:website:ann"])
        // Every node sees him gone (with several nodes, his leave reaches the others an event later).
        XCTAssertTrue(eventually(5) { hub.servers.allSatisfy { !$0.chat.presence.isPresent("conv:website:ann", "wes") } })
        _ = try ann.result("send", ["channel": "conv:website:ann", "text": "one more", "client_msg_id": "a2"])
        _ = try ann.result("send", ["channel": "conv:website:ann", "text": "and another", "client_msg_id": "a3"])
        let wesList = try bridge.get("/v1/users/wes/notifications")
        XCTAssertEqual(wesList.json["items"]?.arrayValue?.count, 1, wesList.text)
        XCTAssertEqual(wesList.json["items"]?[0]?["data"]?["count"]?.intValue, 2)
    }

    func testAnInterruptedFanOutResumesAfterARestart() throws {
        let dir = TestDirectory.make("hub-fanout")
        hub.stop()
        hub = try TestHub { $0.dataDir = dir }
        let store = hub.server.store
        // Every upsert waited for: with several writers (PostgreSQL) the last one committed is
        // not always the last one queued.
        let upserted = DispatchGroup()
        for i in 0..<600 {
            upserted.enter()
            store.upsertUser(UserRecord(id: "r\(i)", role: "client", name: "R"), now: 1) { _ in upserted.leave() }
        }
        XCTAssertEqual(upserted.wait(timeout: .now() + 30), .success)
        // Recorded but never run: as if the hub stopped right after answering the POST.
        let content = NotificationContent(service: "platform", category: "updates", title: "Resumed", body: "", data: "{}")
        let started = try waitForStore { store.startFanout(content, audience: "client", now: wallMillis(), claim: nil, completion: $0) }.get()
        guard case .fresh(let f) = started else { return XCTFail("not started: \(started)") }
        XCTAssertEqual(f.count, 600)
        XCTAssertEqual(try bridge.get("/v1/users/r599/notifications").json["items"]?.arrayValue?.count, 0)
        hub.stop(keepingStore: true)
        hub = try TestHub(database: hub.database) { $0.dataDir = dir }
        let deadline = Date().addingTimeInterval(5)
        while try bridge.get("/v1/users/r599/notifications").json["items"]?.arrayValue?.count != 1 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertEqual(try bridge.get("/v1/users/r599/notifications").json["items"]?[0]?["title"]?.stringValue, "Resumed")
        XCTAssertEqual(try bridge.get("/v1/users/r0/notifications").json["items"]?.arrayValue?.count, 1, "stored once each")
        let restarted = hub.server.store
        XCTAssertEqual(try waitForStore { restarted.unfinishedFanouts(completion: $0) }.get(), [])
    }
}
