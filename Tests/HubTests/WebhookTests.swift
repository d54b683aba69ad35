import Foundation
import Glibc
import Persistence
import Protocol
import XCTest
@testable import Hub
@testable import Notifications

// Webhooks end to end (docs/protocol.md "Webhooks"): a real hub (in process, on the topology's
// store; or the executable on a SQLite file for the kill), a real receiver over sockets, the
// signature recomputed here with the openssl command (not the hub's code), and a receiver's
// replay check written as a backend would write it.
final class WebhookTests: XCTestCase {
    static let secret = "whsec-test-0123456789abcdef"

    /// A store in which wes serves ann's website conversation, written before any hub runs with
    /// webhooks: ann's messages then queue nothing, and each posts exactly one message.created.
    /// (A client writing where no agent serves also posts conversation.queued: see the desk test.)
    static func servedStore(postgres: Bool = TestTopology.current.usesPostgres) throws -> (data: String, database: TestDatabase?) {
        let data = TestDirectory.make("webhook-served")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let database = postgres ? try TestDatabase() : nil
        let store: any Store = if let database {
            try PostgresStore(url: database.url, now: 1, messageWording: MessageNotificationText.wording)
        } else {
            try SQLiteStore(path: data + "/hub.sqlite", now: 1, messageWording: MessageNotificationText.wording)
        }
        defer { store.close() }
        _ = try waitForStore { store.setAssignment(Assignment(conversation: ConversationKey(service: "website", clientId: "ann"), agentId: "wes"),
                                                   now: 1, completion: $0) }.get()
        return (data, database)
    }

    private func hub(_ receiver: WebhookReceiver, retryBaseMs: Int64 = 100) throws -> TestHub {
        let served = try Self.servedStore()
        return try TestHub(database: served.database) { c in
            c.dataDir = served.data
            c.webhook = try? WebhookEndpoint.parse(receiver.url).get()
            c.webhookSecret = Self.secret
            c.webhookPollMs = 50
            c.webhookRetryBaseMs = retryBaseMs
        }
    }

    /// hex HMAC-SHA256 of `payload` keyed with `key`, by `openssl dgst` (independent of the hub).
    static func opensslHMAC(key: String, _ payload: [UInt8]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["openssl", "dgst", "-sha256", "-hmac", key, "-r"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(Data(payload))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestError("openssl dgst failed") }
        return String(decoding: out, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    /// What a receiver does with `Montrose-Signature`: the MAC must match "<t>.<body>", and `t`
    /// must be within `tolerance` seconds of its own clock (else: a replay, refused).
    enum ReceiverVerdict: Equatable { case accepted, badSignature, tooOld }
    static func receiverCheck(_ header: String, body: [UInt8], now: Int64, tolerance: Int64 = 300) throws -> ReceiverVerdict {
        var t: Int64?
        var v1: String?
        for part in header.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == "t" { t = Int64(kv[1]) }
            if kv.count == 2, kv[0] == "v1" { v1 = String(kv[1]) }
        }
        guard let t, let v1 else { return .badSignature }
        guard try opensslHMAC(key: secret, Array("\(t).".utf8) + body) == v1 else { return .badSignature }
        return abs(now - t) <= tolerance ? .accepted : .tooOld
    }

    private func send(_ client: ChatClient, _ channel: String, _ text: String, _ cmid: String) throws -> JSON {
        try client.result("send", ["channel": .string(channel), "text": .string(text), "client_msg_id": .string(cmid)])
    }

    func testAMessageSentOverAWebSocketArrivesSignedAsMessageCreated() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let hub = try hub(receiver)
        defer { hub.stop() }
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        let sentAt = Int64(Date().timeIntervalSince1970)
        let ack = try send(ann, "conv:website:ann", "Hello, my site is down", "a1")
        _ = try send(ann, "conv:website:ann", "Anyone?", "a2")
        guard let got = receiver.waitFor(2) else { return XCTFail("the receiver got \(receiver.requests.count) of 2 events") }
        let first = got[0]
        XCTAssertEqual(first.method, "POST")
        XCTAssertEqual(first.target, "/hooks/montrose?src=test")
        XCTAssertEqual(first.headers["content-type"], "application/json")
        XCTAssertTrue(first.headers["user-agent"]?.hasPrefix("montrose-hub/") == true, "\(first.headers)")
        let header = try XCTUnwrap(first.headers["montrose-signature"], "\(first.headers)")
        let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").map { p -> (String, String) in
            let kv = p.split(separator: "=", maxSplits: 1)
            return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
        })
        let t = try XCTUnwrap(parts["t"].flatMap { Int64($0) }, header)
        XCTAssertEqual(parts["v1"], try Self.opensslHMAC(key: Self.secret, Array("\(t).".utf8) + first.body),
                       "v1 is the HMAC-SHA256 of \"<t>.<body>\" keyed with the secret")
        let body = try JSONParser.parse(first.text)
        XCTAssertEqual(Set(body.objectValue?.keys.map { $0 } ?? []), ["id", "type", "ts", "data"])
        XCTAssertEqual(body["type"]?.stringValue, "message.created")
        let data = try XCTUnwrap(body["data"])
        XCTAssertEqual(data["channel"]?.stringValue, "conv:website:ann")
        XCTAssertEqual(data["seq"]?.intValue, ack["seq"]?.intValue)
        XCTAssertEqual(data["msg_id"]?.intValue, ack["msg_id"]?.intValue)
        XCTAssertEqual(data["from"]?["id"]?.stringValue, "ann")
        XCTAssertEqual(data["from"]?["role"]?.stringValue, "client")
        XCTAssertEqual(data["from"]?["name"]?.stringValue, "Ann")
        XCTAssertEqual(data["text"]?.stringValue, "Hello, my site is down")
        XCTAssertEqual(data["client_msg_id"]?.stringValue, "a1")
        XCTAssertEqual(data["ts"]?.intValue, ack["ts"]?.intValue)
        XCTAssertGreaterThanOrEqual(t, sentAt)
        let ids = try got.map { try JSONParser.parse($0.text)["id"]?.stringValue ?? "" }
        XCTAssertEqual(Set(ids).count, 2, "each event has its own id: \(ids)")
        XCTAssertTrue(ids.allSatisfy { $0.hasPrefix("evt_") }, "\(ids)")
        XCTAssertEqual(try JSONParser.parse(got[1].text)["data"]?["text"]?.stringValue, "Anyone?", "in order")
        let metrics = try hub.bridge.get("/metrics").text
        XCTAssertTrue(eventually(5) { (try? hub.bridge.get("/metrics").text.contains("montrose_webhooks_delivered_total 2")) == true },
                      metrics)
    }

    func testAnEditAndADeleteArriveAsMessageUpdatedAndMessageDeletedInOrder() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let hub = try hub(receiver)
        defer { hub.stop() }
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        let seq = try send(ann, "conv:website:ann", "My domian", "a1")["seq"] ?? .null
        _ = try ann.result("edit", ["channel": "conv:website:ann", "seq": seq, "text": "My domain"])
        // Delivered before the delete: an event still in the outbox when its message is deleted
        // is erased with it (the next test).
        guard receiver.waitFor(2) != nil else { return XCTFail("the receiver got \(receiver.requests.count) of 2 events") }
        _ = try ann.result("delete", ["channel": "conv:website:ann", "seq": seq])
        guard let got = receiver.waitFor(3) else { return XCTFail("the receiver got \(receiver.requests.count) of 3 events") }
        let bodies = try got.map { try JSONParser.parse($0.text) }
        XCTAssertEqual(bodies.map { $0["type"]?.stringValue }, ["message.created", "message.updated", "message.deleted"])
        XCTAssertEqual(bodies[1]["data"]?["text"]?.stringValue, "My domain")
        XCTAssertNotNil(bodies[1]["data"]?["edited_at"]?.intValue)
        XCTAssertEqual(bodies[2]["data"]?["seq"], seq)
        XCTAssertEqual(bodies[2]["data"]?["channel"]?.stringValue, "conv:website:ann")
        XCTAssertNil(bodies[2]["data"]?["text"], "a delete names the message, never its text")
    }

    func testAMessageDeletedBeforeItsEventWasDeliveredIsPostedWithoutItsText() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        receiver.script([503]) // the first attempt fails: message.created waits in the outbox
        let hub = try hub(receiver, retryBaseMs: 1_500)
        defer { hub.stop() }
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        let seq = try send(ann, "conv:website:ann", "my password is hunter2", "a1")["seq"] ?? .null
        guard receiver.waitFor(1) != nil else { return XCTFail("no first attempt") }
        _ = try ann.result("delete", ["channel": "conv:website:ann", "seq": seq])
        guard let got = receiver.waitFor(3) else { return XCTFail("the receiver got \(receiver.requests.count) of 3 requests") }
        XCTAssertTrue(got[0].text.contains("hunter2"), "the attempt before the delete carried it")
        let retried = try JSONParser.parse(got[1].text)
        XCTAssertEqual(retried["type"]?.stringValue, "message.created")
        XCTAssertEqual(retried["data"]?["deleted"]?.boolValue, true)
        XCTAssertFalse(got[1].text.contains("hunter2"), "the retry after the delete is a tombstone: \(got[1].text)")
        XCTAssertEqual(try JSONParser.parse(got[2].text)["type"]?.stringValue, "message.deleted")
    }

    func testTheSupportDeskPostsItsEventsInTheOrderTheyHappened() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let hub = try hub(receiver)
        defer { hub.stop() }
        let bob = try ChatClient(port: hub.port, token: TestHub.token("bob", .client))
        let wes = try ChatClient(port: hub.port, token: TestHub.token("wes", .websiteAgent))
        _ = try send(bob, "conv:website:bob", "My domain expired", "b1")
        _ = try wes.result("claim", ["channel": "conv:website:bob"])
        _ = try wes.result("send", ["channel": "conv:website:bob", "text": "Renewing it now", "client_msg_id": "w1", "internal": true])
        _ = try wes.result("conversation.status", ["channel": "conv:website:bob", "status": "resolved"])
        _ = try send(bob, "conv:website:bob", "Thanks!", "b2")
        guard let got = receiver.waitFor(7) else { return XCTFail("the receiver got \(receiver.requests.map(\.text))") }
        let events = got.compactMap { try? JSONParser.parse($0.body) }
        XCTAssertEqual(events.map { $0["type"]?.stringValue ?? "?" },
                       ["message.created", "conversation.queued", "assignment.changed", "message.created",
                        "conversation.status", "message.created", "conversation.status"])
        XCTAssertEqual(events[1]["data"]?["channel"]?.stringValue, "conv:website:bob")
        XCTAssertEqual(events[1]["data"]?["last_message"]?["text"]?.stringValue, "My domain expired")
        XCTAssertEqual(events[2]["data"]?["agents"]?.arrayValue?.map(\.stringValue), ["wes"])
        XCTAssertEqual(events[2]["data"]?["previous_agent"], .null)
        XCTAssertEqual(events[3]["data"]?["internal"]?.boolValue, true, "the backend hears of notes, marked")
        XCTAssertEqual(events[4]["data"]?["status"]?.stringValue, "resolved")
        XCTAssertEqual(events[4]["data"]?["status_by"]?.stringValue, "wes")
        XCTAssertEqual(events[6]["data"]?["status"]?.stringValue, "open", "the client's message reopened it")
        XCTAssertEqual(events[6]["data"]?["status_by"]?.stringValue, "bob")
        // The bridge's removal: the assignment event, and the conversation queued again.
        XCTAssertEqual(try hub.bridge.send("DELETE", "/v1/assignments/website/bob").status, 200)
        guard let more = receiver.waitFor(9) else { return XCTFail("the receiver got \(receiver.requests.map(\.text))") }
        let tail = more.suffix(2).compactMap { try? JSONParser.parse($0.body) }
        XCTAssertEqual(tail.map { $0["type"]?.stringValue ?? "?" }, ["assignment.changed", "conversation.queued"])
        XCTAssertEqual(tail.first?["data"]?["agents"]?.arrayValue?.count, 0)
        XCTAssertEqual(tail.first?["data"]?["previous_agent"]?.stringValue, "wes")
    }

    func testAReceiverAnswering500TwiceThen200GetsTheEventThreeTimesAndTheNextOnlyAfter() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        receiver.script([500, 500, 200, 200])
        let hub = try hub(receiver)
        defer { hub.stop() }
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try send(ann, "conv:website:ann", "first", "f1")
        _ = try send(ann, "conv:website:ann", "second", "f2")
        guard let got = receiver.waitFor(4) else { return XCTFail("the receiver got \(receiver.requests.count) of 4 requests") }
        XCTAssertTrue(receiver.waitFor(5, timeout: 0.5) == nil, "nothing more after a 200: \(receiver.requests.map(\.text))")
        let bodies = try got.map { try JSONParser.parse($0.text) }
        let ids = bodies.map { $0["id"]?.stringValue ?? "" }
        XCTAssertEqual(ids[0], ids[1])
        XCTAssertEqual(ids[1], ids[2], "the same event, the same id, three times")
        XCTAssertNotEqual(ids[3], ids[0])
        XCTAssertEqual(bodies.map { $0["data"]?["text"]?.stringValue ?? "" }, ["first", "first", "first", "second"],
                       "the second message of the conversation waits until the first is delivered")
        XCTAssertEqual(got[0].text, got[2].text, "a retry posts the same body")
        XCTAssertGreaterThanOrEqual(got[3].receivedAt, got[2].receivedAt)

        // The deliveries endpoint: the four attempts, newest first, each with its event's state.
        var list: [JSON] = []
        XCTAssertTrue(eventually(5) {
            list = (try? hub.bridge.get("/v1/webhooks/deliveries?limit=10").json["deliveries"]?.arrayValue) ?? []
            return list.count == 4
        }, "\(list)")
        XCTAssertEqual(list.map { $0["event_id"]?.stringValue ?? "" }, [ids[3], ids[0], ids[0], ids[0]])
        XCTAssertEqual(list.map { $0["attempt"]?.intValue ?? 0 }, [1, 3, 2, 1])
        XCTAssertEqual(list.map { $0["status"]?.intValue ?? 0 }, [200, 200, 500, 500])
        XCTAssertEqual(list.map { $0["state"]?.stringValue ?? "" }, ["delivered", "delivered", "delivered", "delivered"])
        XCTAssertEqual(list.first?["type"]?.stringValue, "message.created")
        XCTAssertNotNil(list.first?["duration_ms"]?.intValue)
        XCTAssertEqual(try hub.bridge.get("/v1/webhooks/deliveries?limit=2").json["deliveries"]?.arrayValue?.count, 2)
        XCTAssertEqual(try hub.bridge.get("/v1/webhooks/deliveries?limit=0").status, 400)
        XCTAssertEqual(try hub.bridge.send("GET", "/v1/webhooks/deliveries", key: nil).status, 401)
    }

    func testTheSignatureTimeIsTheSendTimeAndAReplayOutsideTheToleranceIsRefused() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        receiver.script([503])
        // The retry comes at least 1.1 s after the first attempt: a second later on the clock.
        let hub = try hub(receiver, retryBaseMs: 2_200)
        defer { hub.stop() }
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try send(ann, "conv:website:ann", "replay me", "r1")
        guard let got = receiver.waitFor(2) else { return XCTFail("the receiver got \(receiver.requests.count) of 2 requests") }
        func t(_ r: WebhookReceiver.Request) -> Int64 {
            r.headers["montrose-signature"]?.split(separator: ",").first { $0.hasPrefix("t=") }.flatMap { Int64($0.dropFirst(2)) } ?? 0
        }
        XCTAssertEqual(got[0].text, got[1].text, "the same body")
        for r in got {
            XCTAssertLessThanOrEqual(abs(t(r) - r.receivedAt / 1000), 1, "t is when the attempt was sent, not when the event was written")
        }
        XCTAssertGreaterThan(t(got[1]), t(got[0]), "each attempt is signed when it is sent")
        let fresh = try XCTUnwrap(got[1].headers["montrose-signature"])
        let now = got[1].receivedAt / 1000
        XCTAssertEqual(try Self.receiverCheck(fresh, body: got[1].body, now: now), .accepted)
        XCTAssertEqual(try Self.receiverCheck(fresh, body: got[1].body, now: now + 301), .tooOld,
                       "the same request replayed five minutes later is refused by its t")
        // A replayer cannot move t forward: the MAC covers it.
        let moved = fresh.replacingOccurrences(of: "t=\(t(got[1]))", with: "t=\(now + 301)")
        XCTAssertEqual(try Self.receiverCheck(moved, body: got[1].body, now: now + 301), .badSignature)
        var tampered = got[1].body
        tampered[tampered.count - 2] ^= 1
        XCTAssertEqual(try Self.receiverCheck(fresh, body: tampered, now: now), .badSignature)
        // The hub's own verifier (Protocol.WebhookSignature) agrees.
        XCTAssertEqual(WebhookSignature.verify(header: fresh, secret: Array(Self.secret.utf8), body: got[1].body, now: now),
                       .success(t(got[1])))
        XCTAssertEqual(WebhookSignature.verify(header: fresh, secret: Array(Self.secret.utf8), body: got[1].body, now: now + 301),
                       .failure(.outsideTolerance(ageSeconds: 301 + now - t(got[1]))))
    }

    /// A port nobody listens on (a receiver's, closed).
    private func closedPort() throws -> Int {
        let r = try WebhookReceiver()
        r.stop()
        return r.port
    }

    func testTheOutboxSurvivesASIGKILLAndIsDeliveredAfterARestart() throws {
        let port = try closedPort()
        let data = try Self.servedStore(postgres: false).data // the executable runs on this SQLite file
        let args = ["--host", "127.0.0.1", "--port", "0", "--bridge-port", "0", "--data", data, "--no-dev",
                    "--jwt-secret", TestHub.secret, "--bridge-key", TestHub.bridgeKey, "--loops", "1",
                    "--webhook", "http://127.0.0.1:\(port)/in"]
        func start() throws -> (HubProcess, Int, Int) {
            // The secret through the environment, as a deployment would give it.
            let hub = try HubProcess(args, environment: ["MONTROSE_WEBHOOK_SECRET": Self.secret])
            guard let line = hub.waitForLine(containing: "public listening", timeout: 10), let p = HubProcess.port(in: line) else {
                throw TestError("hub did not start: \(hub.outputLines) \(hub.standardError)")
            }
            guard let bridgeLine = hub.waitForLine(containing: "bridge listening", timeout: 10),
                  let b = HubProcess.port(in: bridgeLine) else { throw TestError("no bridge port: \(hub.outputLines)") }
            return (hub, p, b)
        }
        let (first, publicPort, bridgePort) = try start()
        let ann = try ChatClient(port: publicPort, token: TestHub.token("ann", .client))
        for i in 1...3 { _ = try send(ann, "conv:website:ann", "while down \(i)", "d\(i)") }
        // The first event was tried and refused (the receiver is down) before the kill.
        var attempts: [JSON] = []
        XCTAssertTrue(eventually(10) {
            attempts = (try? BridgeClient(port: bridgePort).get("/v1/webhooks/deliveries").json["deliveries"]?.arrayValue) ?? []
            return !attempts.isEmpty
        }, "no failed attempt listed before the kill")
        XCTAssertEqual(attempts.first?["state"]?.stringValue, "pending")
        XCTAssertNil(attempts.first?["status"]?.intValue)
        XCTAssertTrue(attempts.first?["error"]?.stringValue?.contains("cannot connect") == true, "\(attempts)")
        first.signal(SIGKILL)
        _ = first.waitForExit()
        XCTAssertFalse(first.standardError.contains(Self.secret), "the secret is never logged")

        let receiver = try WebhookReceiver(port: port)
        defer { receiver.stop() }
        let (second, _, _) = try start()
        defer { second.signal(SIGTERM); _ = second.waitForExit() }
        guard let got = receiver.waitFor(3, timeout: 20) else {
            return XCTFail("after the restart the receiver got \(receiver.requests.count) of 3 events")
        }
        let texts = try got.map { try JSONParser.parse($0.text)["data"]?["text"]?.stringValue ?? "" }
        XCTAssertEqual(texts, ["while down 1", "while down 2", "while down 3"], "every committed event, in order")
        let signature = try XCTUnwrap(got[0].headers["montrose-signature"])
        XCTAssertEqual(try Self.receiverCheck(signature, body: got[0].body, now: got[0].receivedAt / 1000), .accepted)
    }

    func testTheFlagsGoTogetherAndTheSecretIsNeverRepeated() throws {
        func refusal(_ args: [String], env: [String: String] = [:]) -> String? {
            do { _ = try Configuration.parse(args, environment: env); return nil } catch { return error.description }
        }
        let secret = "s3cret-value-0123456789"
        XCTAssertEqual(refusal(["--webhook", "http://127.0.0.1:9/x"]),
                       "--webhook and --webhook-secret (MONTROSE_WEBHOOK, MONTROSE_WEBHOOK_SECRET) go together")
        XCTAssertEqual(refusal(["--webhook-secret", secret]),
                       "--webhook and --webhook-secret (MONTROSE_WEBHOOK, MONTROSE_WEBHOOK_SECRET) go together")
        XCTAssertNil(refusal(["--webhook", "https://example.com/x", "--webhook-secret", secret, "--webhook-ca", "/etc/ca.pem"]))
        XCTAssertEqual(refusal(["--webhook", "http://example.com/x", "--webhook-secret", secret, "--webhook-ca", "/etc/ca.pem"]),
                       "--webhook-ca is for an https:// --webhook")
        XCTAssertEqual(refusal([], env: ["MONTROSE_WEBHOOK": "ftp://x", "MONTROSE_WEBHOOK_SECRET": secret]),
                       "MONTROSE_WEBHOOK must be an http:// or https:// URL")
        XCTAssertEqual(refusal(["--webhook", "http://127.0.0.1:9/x", "--webhook-secret", "short"]),
                       "--webhook-secret must be at least 16 bytes")
        XCTAssertNil(refusal(["--webhook", "http://127.0.0.1:9/x"], env: ["MONTROSE_WEBHOOK_SECRET": secret]))
        for args in [["--webhook", "http://u:\(secret)@h/x", "--webhook-secret", secret], ["--webhook-secret", "short-\(secret.prefix(3))"]] {
            let why = refusal(args) ?? ""
            XCTAssertFalse(why.contains(secret) || why.contains("short-"), why)
            XCTAssertFalse(why.contains("\n"), "one line: \(why)")
        }
        let c = try Configuration.parse(["--webhook", "http://[::1]:8088/a?b=c", "--webhook-secret", secret], environment: [:])
        XCTAssertEqual(c.webhook, WebhookEndpoint(host: "::1", port: 8088, target: "/a?b=c"))
    }

    func testAnUnreadableCAFileIsRefusedAtStart() throws {
        XCTAssertThrowsError(try TestHub { c in
            c.webhook = try? WebhookEndpoint.parse("https://localhost:9/x").get()
            c.webhookSecret = Self.secret
            c.webhookCA = "/nonexistent/ca.pem"
        }) { error in
            XCTAssertTrue("\(error)".contains("--webhook: cannot read the CA file /nonexistent/ca.pem"), "\(error)")
            XCTAssertFalse("\(error)".contains(Self.secret))
        }
    }

    func testTheDeliveriesEndpointAnswersWithoutWebhooks() throws {
        let hub = try TestHub()
        defer { hub.stop() }
        let r = try hub.bridge.get("/v1/webhooks/deliveries")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.text, #"{"configured":false,"deliveries":[]}"#)
        XCTAssertFalse(try hub.bridge.get("/metrics").text.contains("montrose_webhooks_delivered_total"), "no webhook counters without --webhook")
    }

    func testASilentReceiverHoldsUpNoSendAndTheHubStillStopsPromptly() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        receiver.script([0]) // accepts the first POST and never answers
        let hub = try hub(receiver)
        var stopped = false
        defer { if !stopped { hub.stop() } }
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try send(ann, "conv:website:ann", "first", "s0")
        XCTAssertNotNil(receiver.waitFor(1), "the deliverer is now waiting on the silent receiver")
        let started = Date()
        for i in 1...20 { _ = try send(ann, "conv:website:ann", "more \(i)", "s\(i)") }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "sends are acknowledged while the webhook waits")
        let stopping = Date()
        hub.stop()
        stopped = true
        // Below the 10 s answer timeout with room for a cluster's own stop (about 3 s on two nodes).
        XCTAssertLessThan(Date().timeIntervalSince(stopping), 8, "the attempt in hand is cut, not waited out (10 s answer timeout)")
    }

    func testABridgeMessageIsPostedOnceAndItsRetryIsNot() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let hub = try hub(receiver)
        defer { hub.stop() }
        let bridge = hub.bridge
        XCTAssertEqual(try bridge.post("/v1/conversations/website/ann/messages", #"{"text":"Your site is live","client_msg_id":"b1"}"#).status, 201)
        XCTAssertEqual(try bridge.post("/v1/conversations/website/ann/messages", #"{"text":"Your site is live","client_msg_id":"b1"}"#).status, 201)
        guard let got = receiver.waitFor(1) else { return XCTFail("no event for the bridge's message") }
        XCTAssertTrue(receiver.waitFor(2, timeout: 1) == nil, "the retry is not a new message: \(receiver.requests.map(\.text))")
        let data = try JSONParser.parse(got[0].text)["data"]
        XCTAssertEqual(data?["from"]?["role"]?.stringValue, "system")
        XCTAssertEqual(data?["text"]?.stringValue, "Your site is live")
    }

    func testAnHTTPSReceiverGetsTheEventOnlyWithACertificateTheHubTrusts() throws {
        let cert = try TestCertificate.make(commonName: "localhost")
        let receiver = try WebhookReceiver(tls: cert)
        defer { receiver.stop() }
        let url = "https://localhost:\(receiver.port)/hooks"
        // Trusting the receiver's certificate (--webhook-ca): delivered, signed as over http.
        let served = try Self.servedStore()
        let trusting = try TestHub(database: served.database) { c in
            c.dataDir = served.data
            c.webhook = try? WebhookEndpoint.parse(url).get()
            c.webhookSecret = Self.secret
            c.webhookCA = cert.cert
            c.webhookPollMs = 50
        }
        defer { trusting.stop() }
        let ann = try ChatClient(port: trusting.port, token: TestHub.token("ann", .client))
        _ = try send(ann, "conv:website:ann", "over TLS", "t1")
        guard let got = receiver.waitFor(1) else {
            return XCTFail("no event over https (failed handshakes: \(receiver.failedHandshakes))")
        }
        XCTAssertEqual(try JSONParser.parse(got[0].text)["data"]?["text"]?.stringValue, "over TLS")
        XCTAssertEqual(got[0].headers["host"], "localhost:\(receiver.port)")
        XCTAssertEqual(try Self.receiverCheck(try XCTUnwrap(got[0].headers["montrose-signature"]), body: got[0].body,
                                              now: got[0].receivedAt / 1000), .accepted)
        trusting.stop()

        // With the system's CAs only, the self-signed certificate is refused: nothing is posted.
        let doubting = try TestHub { c in
            c.webhook = try? WebhookEndpoint.parse(url).get()
            c.webhookSecret = Self.secret
            c.webhookPollMs = 50
        }
        defer { doubting.stop() }
        let bob = try ChatClient(port: doubting.port, token: TestHub.token("bob", .client))
        _ = try send(bob, "conv:website:bob", "not to an untrusted peer", "u1")
        var attempts: [JSON] = []
        XCTAssertTrue(eventually(10) {
            attempts = (try? doubting.bridge.get("/v1/webhooks/deliveries").json["deliveries"]?.arrayValue) ?? []
            return !attempts.isEmpty
        })
        XCTAssertTrue(attempts.first?["error"]?.stringValue?.contains("certificate") == true, "\(attempts)")
        XCTAssertEqual(attempts.first?["state"]?.stringValue, "pending")
        XCTAssertEqual(receiver.requests.count, 1, "no request reached the receiver over an untrusted connection")
    }
}
