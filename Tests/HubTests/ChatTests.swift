import Foundation
import Persistence
import Protocol
import XCTest
@testable import Hub

// Chat over real sockets against an in-process hub with a real SQLite file: identity,
// authorization, durable ordered delivery, recovery with `since`, retries and bad input.
final class ChatTests: XCTestCase {
    var hub: TestHub!

    override func setUpWithError() throws {
        var limits = ChatLimits()
        limits.authDeadlineMs = 1_000
        hub = try TestHub(chatLimits: limits)
        try hub.assign("wes", to: "ann", for: "website")
    }
    override func tearDown() { hub.stop() }

    private func client(_ id: String = "ann", _ role: Role = .client, services: [String]? = nil) throws -> ChatClient {
        try ChatClient(port: hub.port, token: TestHub.token(id, role, services: services))
    }

    let annWebsite = "conv:website:ann"

    // MARK: identity

    func testAuthReturnsTheUserAndServerTime() throws {
        let c = try ChatClient(port: hub.port)
        let r = try c.result("auth", ["token": .string(TestHub.token("ann", .client, name: "Ann A."))])
        XCTAssertEqual(r["user"]?.stringValue, "ann")
        XCTAssertEqual(r["role"]?.stringValue, "client")
        XCTAssertEqual(r["name"]?.stringValue, "Ann A.")
        XCTAssertNotNil(r["session"]?.stringValue)
        XCTAssertGreaterThan(r["server_time"]?.intValue ?? 0, 1_700_000_000_000, "server_time is ms since the epoch")
        XCTAssertNotNil(try c.result("ping"))
    }

    func testTokenOnTheURLAuthenticates() throws {
        let c = try ChatClient(port: hub.port, urlToken: TestHub.token("ann", .client))
        XCTAssertEqual(try c.result("subscribe", ["channel": .string(annWebsite)])["last_seq"]?.intValue, 0)
    }

    private func assertRejected(_ token: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try ChatClient(port: hub.port)
        let r = try c.request("auth", ["token": .string(token)])
        XCTAssertEqual(r["error"]?["code"]?.stringValue, "unauthorized", "reply: \(r.text)", file: file, line: line)
        XCTAssertEqual(try c.ws.readClose().closeCode, 4001, "closed with 4001", file: file, line: line)
    }

    func testBadSignatureIsClosedWith4001() throws {
        var token = TestHub.token("ann", .client)
        let last = token.removeLast() // a different last character: never the same token again
        token.append(last == "A" ? "B" : "A")
        try assertRejected(token)
        try assertRejected(JWTSigner(secret: Array("another-secret-entirely-000".utf8))
            .sign(TokenClaims(sub: "ann", role: .client, name: "Ann", exp: Int64(Date().timeIntervalSince1970) + 60)))
    }

    func testAlgNoneIsClosedWith4001() throws {
        let header = Base64URL.encode(Array("{\"alg\":\"none\",\"typ\":\"JWT\"}".utf8))
        let payload = Base64URL.encode(Array("{\"sub\":\"ann\",\"role\":\"admin\",\"name\":\"A\",\"exp\":4102444800}".utf8))
        try assertRejected("\(header).\(payload).")
    }

    func testExpiredTokenIsClosedWith4001() throws {
        try assertRejected(TestHub.token("ann", .client, expiresIn: -120))
    }

    func testNoAuthWithinTheDeadlineIsClosedWith4008() throws {
        let c = try ChatClient(port: hub.port)
        XCTAssertEqual(try c.ws.readClose().closeCode, 4008)
    }

    func testOpsBeforeAuthAreRefusedAndTheConnectionStays() throws {
        let c = try ChatClient(port: hub.port)
        XCTAssertEqual(try c.errorCode("subscribe", ["channel": .string(annWebsite)]), "unauthorized")
        XCTAssertNotNil(try c.result("auth", ["token": .string(TestHub.token("ann", .client))]))
    }

    // MARK: authorization

    func testClientCannotReadAnotherClientsConversation() throws {
        let bob = try client("bob")
        XCTAssertEqual(try bob.errorCode("subscribe", ["channel": .string(annWebsite)]), "forbidden")
        XCTAssertEqual(try bob.errorCode("history", ["channel": .string(annWebsite)]), "forbidden")
        XCTAssertEqual(try bob.errorCode("send", ["channel": .string(annWebsite), "text": "hi", "client_msg_id": "1"]), "forbidden")
        XCTAssertEqual(try bob.errorCode("subscribe", ["channel": "user:ann"]), "forbidden")
    }

    func testClientOnlyReachesSubscribedServices() throws {
        let ann = try client("ann", services: ["courses"])
        XCTAssertEqual(try ann.errorCode("subscribe", ["channel": .string(annWebsite)]), "forbidden")
        XCTAssertNotNil(try ann.result("subscribe", ["channel": "conv:courses:ann"]))
    }

    func testOnlyTheAssignedAgentAndAdminsReachAConversation() throws {
        XCTAssertNotNil(try client("wes", .websiteAgent).result("subscribe", ["channel": .string(annWebsite)]))
        XCTAssertEqual(try client("walt", .websiteAgent).errorCode("subscribe", ["channel": .string(annWebsite)]), "forbidden",
                       "an unassigned agent")
        XCTAssertEqual(try client("wes", .websiteAgent).errorCode("subscribe", ["channel": "conv:website:bob"]), "forbidden")
        XCTAssertNotNil(try client("ada", .admin).result("subscribe", ["channel": .string(annWebsite)]))
    }

    // MARK: delivery

    func testMessagesFlowBothWaysLiveWithAcks() throws {
        let ann = try client()
        let wes = try client("wes", .websiteAgent)
        _ = try ann.result("subscribe", ["channel": .string(annWebsite)])
        _ = try wes.result("subscribe", ["channel": .string(annWebsite)])
        let ack = try ann.result("send", ["channel": .string(annWebsite), "text": "Hello, my site is down", "client_msg_id": "a1"])
        XCTAssertEqual(ack["seq"]?.intValue, 1)
        XCTAssertEqual(ack["duplicate"]?.boolValue, false)
        let pushed = try wes.push("message")
        XCTAssertEqual(pushed["text"]?.stringValue, "Hello, my site is down")
        XCTAssertEqual(pushed["from"]?["id"]?.stringValue, "ann")
        XCTAssertEqual(pushed["client_msg_id"]?.stringValue, "a1")
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "Looking into it", "client_msg_id": "w1"])
        XCTAssertEqual(try ann.push("message")["seq"]?.intValue, 1, "a subscriber also receives its own message")
        XCTAssertEqual(try ann.push("message")["seq"]?.intValue, 2)
        let replied = try wes.push("read")
        XCTAssertEqual(replied["user"]?.stringValue, "wes", "a reply moves the sender's own read mark past what it answers")
        XCTAssertEqual(replied["seq"]?.intValue, 2)
        XCTAssertEqual(try ann.result("read", ["channel": .string(annWebsite), "seq": 2])["seq"]?.intValue, 2)
        let tick = try wes.push("read")
        XCTAssertEqual(tick["user"]?.stringValue, "ann")
        XCTAssertEqual(tick["seq"]?.intValue, 2)
    }

    func testRetriedSendIsADuplicateWithTheFirstSeq() throws {
        let ann = try client()
        let first = try ann.result("send", ["channel": .string(annWebsite), "text": "once", "client_msg_id": "same"])
        let again = try ann.result("send", ["channel": .string(annWebsite), "text": "once", "client_msg_id": "same"])
        XCTAssertEqual(again["seq"], first["seq"])
        XCTAssertEqual(again["duplicate"]?.boolValue, true)
        XCTAssertEqual(try ann.result("history", ["channel": .string(annWebsite)])["messages"]?.arrayValue?.count, 1, "stored once")
    }

    func testTwentyConcurrentSendersAreSeenInTheSameGapFreeOrderByEverySubscriber() throws {
        let watchers = try [client("wes", .websiteAgent), client("ada", .admin), client("ann")]
        for w in watchers { _ = try w.result("subscribe", ["channel": .string(annWebsite)]) }
        let perSender = 10
        let group = DispatchGroup()
        let failures = LockedCounter()
        let port = hub.port, channel = annWebsite
        for s in 0..<20 {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let role: Role = s % 2 == 0 ? .client : .websiteAgent
                    let c = try ChatClient(port: port, token: TestHub.token(role == .client ? "ann" : "wes", role))
                    for i in 0..<perSender {
                        _ = try c.result("send", ["channel": .string(channel), "text": .string("s\(s) m\(i)"),
                                                  "client_msg_id": .string("s\(s)-\(i)")])
                    }
                } catch { failures.increment() }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(failures.value, 0, "every send was acknowledged")
        for w in watchers {
            let seqs = try (0..<(20 * perSender)).map { _ in try w.push("message")["seq"]?.intValue ?? -1 }
            XCTAssertEqual(seqs, (1...Int64(20 * perSender)).map { $0 }, "each subscriber sees 1…200 in order, no gap, no duplicate")
        }
    }

    func testReconnectWithSinceRecoversWhatWasMissedThenContinuesLive() throws {
        let wes = try client("wes", .websiteAgent)
        var ann: ChatClient? = try client()
        _ = try ann?.result("subscribe", ["channel": .string(annWebsite)])
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "m1", "client_msg_id": "1"])
        XCTAssertEqual(try ann?.push("message")["seq"]?.intValue, 1)
        ann = nil // the connection drops
        for i in 2...6 { _ = try wes.result("send", ["channel": .string(annWebsite), "text": .string("m\(i)"), "client_msg_id": .string("\(i)")]) }
        let back = try client()
        let r = try back.result("subscribe", ["channel": .string(annWebsite), "since": 1])
        XCTAssertEqual(r["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [2, 3, 4, 5, 6], "exactly what was missed")
        XCTAssertEqual(r["last_seq"]?.intValue, 6)
        XCTAssertEqual(r["more"]?.boolValue, false)
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "m7", "client_msg_id": "7"])
        XCTAssertEqual(try back.push("message")["seq"]?.intValue, 7, "and then live, with no gap")
    }

    func testSubscribeWithSinceDuringSendsHasNoGapAndNoDuplicate() throws {
        let wes = try client("wes", .websiteAgent)
        for i in 1...150 { _ = try wes.result("send", ["channel": .string(annWebsite), "text": .string("m\(i)"), "client_msg_id": .string("p\(i)")]) }
        let port = hub.port, channel = annWebsite
        let sender = Thread {
            if let c = try? ChatClient(port: port, token: TestHub.token("wes", .websiteAgent)) {
                for i in 151...200 { _ = try? c.result("send", ["channel": .string(channel), "text": .string("m\(i)"), "client_msg_id": .string("p\(i)")]) }
            }
        }
        sender.start()
        let ann = try client()
        let r = try ann.result("subscribe", ["channel": .string(annWebsite), "since": 0])
        var seqs = r["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue } ?? []
        XCTAssertEqual(seqs.count, 100, "a page holds at most 100")
        XCTAssertEqual(r["more"]?.boolValue, true)
        while seqs.count < 200 { seqs.append(try ann.push("message")["seq"]?.intValue ?? -1) }
        XCTAssertEqual(seqs, (1...200).map { Int64($0) }, "the rest follows as pushes: 1…200 once each, in order")
    }

    /// A subscribe without `since` on a conversation already subscribed on this node is answered
    /// from the node's record, not the store (one node; a cluster reads the store). While messages
    /// commit one after another, each of 30 subscribers that arrives gets a `last_seq`, and then
    /// every later message once, in order: nothing committed before its reply is pushed, nothing
    /// after it is missed.
    func testSubscribersArrivingDuringSendsGetEveryMessageAfterTheirLastSeqOnce() throws {
        let first = try client("wes", .websiteAgent)
        _ = try first.result("subscribe", ["channel": .string(annWebsite)])
        let total = 300
        let port = hub.port, channel = annWebsite
        let sent = DispatchSemaphore(value: 0)
        Thread {
            defer { sent.signal() }
            guard let c = try? ChatClient(port: port, token: TestHub.token("ann", .client)) else { return }
            for i in 1...total {
                _ = try? c.result("send", ["channel": .string(channel), "text": .string("m\(i)"), "client_msg_id": .string("c\(i)")])
            }
        }.start()
        var arrivals: [(client: ChatClient, lastSeq: Int64)] = []
        for i in 0..<30 {
            let c = try client("ada\(i)", .admin) // not one user: 20 connections each at most
            let r = try c.result("subscribe", ["channel": .string(annWebsite)])
            arrivals.append((c, try XCTUnwrap(r["last_seq"]?.intValue)))
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertEqual(sent.wait(timeout: .now() + 60), .success)
        if hub.topology.nodes == 1 {
            XCTAssertNotNil(hub.server.chat.subscribeStates?.state(annWebsite), "the node keeps the conversation's state")
        }
        let lastSeqs = arrivals.map(\.lastSeq)
        XCTAssertEqual(lastSeqs, lastSeqs.sorted(), "later arrivals never see an earlier last seq")
        XCTAssertGreaterThan(Set(lastSeqs).count, 5, "the subscribers arrived while messages committed: \(lastSeqs)")
        for (c, lastSeq) in arrivals where lastSeq < Int64(total) {
            let seqs = try ((lastSeq + 1)...Int64(total)).map { _ in try c.push("message")["seq"]?.intValue ?? -1 }
            XCTAssertEqual(seqs, Array((lastSeq + 1)...Int64(total)), "after last_seq \(lastSeq): every message once, in order")
            XCTAssertTrue(c.noPush("message", within: 0.05), "and nothing more")
        }
    }

    /// The read marks a subscribe without `since` carries follow every `read` and every sender's
    /// own mark, whether the reply comes from the node's record or the store; the record goes
    /// when the last subscriber does.
    func testTheReadMarksInASubscribeFollowEveryReadAndTheRecordGoesWithTheLastSubscriber() throws {
        var ann: ChatClient? = try client()
        _ = try ann?.result("subscribe", ["channel": .string(annWebsite)])
        let wes = try client("wes", .websiteAgent)
        for i in 1...3 { _ = try wes.result("send", ["channel": .string(annWebsite), "text": .string("m\(i)"), "client_msg_id": .string("r\(i)")]) }
        func marks() throws -> JSON? {
            let agent = try client("wes", .websiteAgent)
            return try agent.result("subscribe", ["channel": .string(annWebsite)])["read_marks"]
        }
        XCTAssertEqual(try marks(), [], "nobody else has read")
        _ = try ann?.result("read", ["channel": .string(annWebsite), "seq": 2])
        XCTAssertEqual(try marks(), [["user": "ann", "seq": 2]])
        _ = try ann?.result("read", ["channel": .string(annWebsite), "seq": 1])
        XCTAssertEqual(try marks(), [["user": "ann", "seq": 2]], "a mark never goes back")
        _ = try ann?.result("send", ["channel": .string(annWebsite), "text": "m4", "client_msg_id": "r4"])
        XCTAssertEqual(try marks(), [["user": "ann", "seq": 4]], "a sender has read their own message")
        // Read up to the end, then reply: the store moves the mark over the reply without a
        // `read` push (it passes no message of another), and the record must follow it too.
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "m5", "client_msg_id": "r5"])
        _ = try ann?.result("read", ["channel": .string(annWebsite), "seq": 5])
        _ = try ann?.result("send", ["channel": .string(annWebsite), "text": "m6", "client_msg_id": "r6"])
        XCTAssertEqual(try marks(), [["user": "ann", "seq": 6]], "the mark over a reply to everything read")
        guard hub.topology.nodes == 1, let cache = hub.server.chat.subscribeStates else { return }
        XCTAssertNotNil(cache.state(annWebsite))
        ann = nil // the last subscriber (each marks() connection closed already)
        XCTAssertTrue(eventually(5) { cache.state(self.annWebsite) == nil }, "the record goes with the node's last subscriber")
        XCTAssertEqual(try marks(), [["user": "ann", "seq": 6]], "and the store answers the next one")
    }

    func testHistoryPagesBackwards() throws {
        let ann = try client()
        for i in 1...12 { _ = try ann.result("send", ["channel": .string(annWebsite), "text": .string("m\(i)"), "client_msg_id": .string("h\(i)")]) }
        let newest = try ann.result("history", ["channel": .string(annWebsite), "limit": 5])
        XCTAssertEqual(newest["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [8, 9, 10, 11, 12])
        XCTAssertEqual(newest["more"]?.boolValue, true)
        let older = try ann.result("history", ["channel": .string(annWebsite), "before": 8, "limit": 5])
        XCTAssertEqual(older["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [3, 4, 5, 6, 7])
        let oldest = try ann.result("history", ["channel": .string(annWebsite), "before": 3, "limit": 5])
        XCTAssertEqual(oldest["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [1, 2])
        XCTAssertEqual(oldest["more"]?.boolValue, false)
    }

    func testRequestsInFlightAreCappedWithRateLimited() throws {
        hub.stop()
        var limits = ChatLimits()
        limits.maxInFlight = 2
        hub = try TestHub(chatLimits: limits)
        let ann = try client()
        // Ten sends in one write: all are read before any store answer can come back.
        var batch: [UInt8] = []
        for i in 1...10 {
            let body = "{\"id\":\(i),\"op\":\"send\",\"channel\":\"conv:website:ann\",\"text\":\"m\(i)\",\"client_msg_id\":\"f\(i)\"}"
            let payload = Array(body.utf8)
            let key: [UInt8] = [1, 2, 3, 4]
            batch += [0x81, 0x80 | UInt8(payload.count)] + key + payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
        }
        try ann.ws.socket.write(batch)
        var ok = 0, limited = 0
        for _ in 1...10 {
            let r = try ann.next()
            if r["ok"]?.boolValue == true { ok += 1 }
            if r["error"]?["code"]?.stringValue == "rate_limited" { limited += 1 }
        }
        XCTAssertEqual(ok, 2, "exactly the limit is accepted while unanswered")
        XCTAssertEqual(limited, 8, "the rest are refused with rate_limited")
        XCTAssertEqual(try ann.result("send", ["channel": .string(annWebsite), "text": "later", "client_msg_id": "later"])["seq"]?.intValue, 3,
                       "once answered, the connection sends again")
    }

    // MARK: bad input

    func testBadInputGetsItsErrorCodeAndTheConnectionStaysUsable() throws {
        let ann = try client()
        try ann.ws.send("{not json")
        XCTAssertEqual(try ann.next()["error"]?["code"]?.stringValue, "bad_request", "malformed JSON")
        try ann.ws.send("[1,2]")
        XCTAssertEqual(try ann.next()["error"]?["code"]?.stringValue, "bad_request", "not an object")
        try ann.ws.send("{\"id\":\"seven\",\"op\":\"ping\"}")
        XCTAssertEqual(try ann.next()["error"]?["code"]?.stringValue, "bad_request", "id of the wrong type")
        XCTAssertEqual(try ann.errorCode("frobnicate"), "bad_request", "unknown op")
        XCTAssertEqual(try ann.errorCode("send", ["channel": .string(annWebsite), "text": 5, "client_msg_id": "x"]), "bad_request")
        XCTAssertEqual(try ann.errorCode("send", ["channel": .string(annWebsite), "text": .string(String(repeating: "a", count: 8_001)),
                                                  "client_msg_id": "x"]), "too_large", "text over 8,000 characters")
        XCTAssertEqual(try ann.errorCode("send", ["channel": .string(annWebsite), "text": "", "client_msg_id": "x"]), "bad_request")
        XCTAssertEqual(try ann.errorCode("send", ["channel": .string(annWebsite), "text": "x",
                                                  "client_msg_id": .string(String(repeating: "k", count: 65))]), "bad_request")
        XCTAssertEqual(try ann.errorCode("subscribe", ["channel": "conv:nosuchservice:ann"]), "not_found", "unknown channel")
        XCTAssertEqual(try ann.errorCode("history", ["channel": .string(annWebsite), "limit": 101]), "bad_request")
        let ok = try ann.result("send", ["channel": .string(annWebsite), "text": .string(String(repeating: "a", count: 8_000)), "client_msg_id": "fine"])
        XCTAssertEqual(ok["seq"]?.intValue, 1, "still usable after all that; 8,000 characters is allowed")
    }

    func testSinceBeyondTheLastSeqStillDeliversWhatComesNext() throws {
        let wes = try client("wes", .websiteAgent)
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "one", "client_msg_id": "b1"])
        let ann = try client()
        let sub = try ann.result("subscribe", ["channel": .string(annWebsite), "since": 1_000])
        XCTAssertEqual(sub["last_seq"]?.intValue, 1)
        XCTAssertEqual(sub["messages"]?.arrayValue?.count, 0)
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "two", "client_msg_id": "b2"])
        XCTAssertEqual(try ann.push("message")["seq"]?.intValue, 2, "seq 2 is not mistaken for already delivered")
    }

    func testALongCatchUpIsPacedByTheReaderNotCutOff() throws {
        // 6,000 stored messages: more than the 4,096 frames a connection may have queued.
        let store = hub.server.store
        let key = ConversationKey(service: "website", clientId: "ann")
        let wes = UserRecord(id: "wes", role: "website_agent", name: "Wes")
        for i in 0..<5_999 {
            store.appendMessage(NewMessage(conversation: key, sender: wes, text: "m\(i)", clientMsgId: "p\(i)", ts: 1)) { _ in }
        }
        _ = try waitForStore { store.appendMessage(NewMessage(conversation: key, sender: wes, text: "last", clientMsgId: "p-last", ts: 1), completion: $0) }.get()
        // A reader with a small window that pauses before reading anything.
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client), receiveBuffer: 4_096)
        try ann.ws.send(#"{"id":1,"op":"subscribe","channel":"conv:website:ann","since":0}"#)
        Thread.sleep(forTimeInterval: 1)
        let first = try ann.reply(to: 1)
        var seqs = (first["result"]?["messages"]?.arrayValue ?? []).compactMap { $0["seq"]?.intValue }
        while seqs.count < 6_000 { seqs.append(try ann.push("message")["seq"]?.intValue ?? -1) }
        XCTAssertEqual(seqs, Array(1...6_000), "every message once, in order, and no 4009")
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}

// Epochs: a `since` is a position in this store's streams.
extension ChatTests {
    func testSubscribeCarriesTheStoreEpochAndASinceFromAnotherEpochStartsOverWithReset() throws {
        let ann = try client()
        for i in 1...3 { _ = try ann.result("send", ["channel": .string(annWebsite), "text": .string("e\(i)"), "client_msg_id": .string("e\(i)")]) }
        let first = try ann.result("subscribe", ["channel": .string(annWebsite)])
        let epoch = try XCTUnwrap(first["epoch"]?.stringValue, "every subscribe result names the epoch")
        XCTAssertEqual(epoch, hub.server.store.epoch)
        XCTAssertNil(first["reset"])

        // The same epoch: an ordinary catch-up from the position.
        let same = try ann.result("subscribe", ["channel": .string(annWebsite), "since": 2, "epoch": .string(epoch)])
        XCTAssertEqual(same["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [3])
        XCTAssertNil(same["reset"])

        // Another epoch (the client's positions came from a store since restored or replaced):
        // everything again from the beginning, marked, not a silent gap.
        let other = try ann.result("subscribe", ["channel": .string(annWebsite), "since": 3, "epoch": "0123456789abcdef"])
        XCTAssertEqual(other["reset"]?.boolValue, true)
        XCTAssertEqual(other["epoch"]?.stringValue, epoch)
        XCTAssertEqual(other["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue }, [1, 2, 3])

        // A since with no epoch (a v1 client) is taken as it is.
        let v1 = try ann.result("subscribe", ["channel": .string(annWebsite), "since": 3])
        XCTAssertEqual(v1["messages"]?.arrayValue?.count, 0)
        XCTAssertNil(v1["reset"])

        XCTAssertEqual(try ann.errorCode("subscribe", ["channel": .string(annWebsite), "since": 1, "epoch": 7]), "bad_request")
        XCTAssertEqual(try ann.errorCode("subscribe", ["channel": .string(annWebsite), "since": 1,
                                                       "epoch": .string(String(repeating: "e", count: 65))]), "bad_request")
        let own = try ann.result("subscribe", ["channel": "user:ann"])
        XCTAssertEqual(own["epoch"]?.stringValue, epoch)
    }
}
