import Foundation
import Glibc
import Protocol
import XCTest
@testable import Hub

// What a new user trips over in the first hour, over real sockets: every request's error reply
// carries its id, and a message that shows nothing is refused on every path that sends one.
final class FirstRunTests: XCTestCase {
    var hub: TestHub!
    override func tearDown() { hub?.stop() }

    let annWebsite = "conv:website:ann"

    func testEveryRefusedRequestIsAnsweredWithItsID() throws {
        var limits = ChatLimits()
        limits.opsPerSecond = 2
        limits.opsBurst = 2
        limits.maxRateLimitStrikes = 100
        hub = try TestHub(chatLimits: limits)
        let c = try ChatClient(port: hub.port, token: TestHub.token("ann", .client)) // auth took one token
        _ = try c.request("ping")
        // Over the rate, a request of several KiB (its id last) is answered with its id.
        let padding = String(repeating: "p", count: 4_000)
        try c.ws.send(#"{"op":"send","channel":"\#(annWebsite)","text":"\#(padding)","client_msg_id":"a","id":901}"#)
        let refused = try c.next()
        XCTAssertEqual(refused["error"]?["code"]?.stringValue, "rate_limited", refused.text)
        XCTAssertEqual(refused["id"]?.intValue, 901, "the id of a 4 KiB request over the rate: \(refused.text)")
        Thread.sleep(forTimeInterval: 1.1)
        // Over the envelope limit (64 KiB), the id is found too.
        let big = String(repeating: "b", count: 70_000)
        try c.ws.send(#"{"id":902,"op":"send","channel":"\#(annWebsite)","text":"\#(big)","client_msg_id":"b"}"#)
        let tooLarge = try c.next()
        XCTAssertEqual(tooLarge["error"]?["code"]?.stringValue, "too_large")
        XCTAssertEqual(tooLarge["id"]?.intValue, 902)
        Thread.sleep(forTimeInterval: 0.6)
        // Invalid JSON after the id: bad_request with the id.
        try c.ws.send(#"{"id":903,"op":"ping",}"#)
        let invalid = try c.next()
        XCTAssertEqual(invalid["error"]?["code"]?.stringValue, "bad_request")
        XCTAssertEqual(invalid["id"]?.intValue, 903)
    }

    func testAURLTokenSignInIsAnsweredWithTheAuthResultUnderIDNull() throws {
        hub = try TestHub()
        let ws = try WSClient(port: hub.port, path: "/ws?token=\(TestHub.token("ann", .client, name: "Ann A."))")
        let first = try JSONParser.parse(try ws.readMessage().payload)
        XCTAssertEqual(first["ok"]?.boolValue, true, first.text)
        if case .null? = first["id"] {} else { XCTFail("the URL sign-in's answer has id null: \(first.text)") }
        XCTAssertEqual(first["result"]?["user"]?.stringValue, "ann")
        XCTAssertEqual(first["result"]?["name"]?.stringValue, "Ann A.")
    }

    func testAMessageThatShowsNothingIsRefusedOverTheSocketAndTheBridge() throws {
        hub = try TestHub()
        try hub.assign("wes", to: "ann", for: "website")
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        for blank in ["", " ", "   \n\t ", "\u{00A0}\u{2003}\u{3000}", "\u{200B}\u{FEFF}", "\r\n\u{2028}", "\u{3164}\u{115F}\u{1160}\u{FFA0}",
                      "\u{2800}", "\u{200E}\u{200F}\u{202A}\u{202E}\u{2066}\u{2069}", "\u{00AD}\u{034F}\u{180E}\u{FE0F}", "\u{E0041}\u{E007F}",
                      "\u{0000}\u{0007}\u{007F}"] {
            let r = try ann.request("send", ["channel": .string(annWebsite), "text": .string(blank), "client_msg_id": "blank"])
            XCTAssertEqual(r["error"]?["code"]?.stringValue, "bad_request", "text \(blank.debugDescription): \(r.text)")
        }
        let bridged = try hub.bridge.post("/v1/conversations/website/ann/messages", #"{"text":" \n\t "}"#)
        XCTAssertEqual(bridged.status, 422, bridged.text)
        XCTAssertTrue(bridged.errorMessage.contains("text"), bridged.text)
        // Nothing was stored; a message with words around white space is fine and kept as sent.
        XCTAssertEqual(try ann.result("history", ["channel": .string(annWebsite)])["messages"]?.arrayValue?.count, 0)
        for shown in ["\u{200B}x", "👍", "\u{FE0F}❤"] {
            XCTAssertFalse(MessageText.isBlank(shown), shown.debugDescription)
        }
        let ok = try ann.result("send", ["channel": .string(annWebsite), "text": "  hello \n", "client_msg_id": "words"])
        XCTAssertEqual(ok["seq"]?.intValue, 1)
        let kept = try ann.result("history", ["channel": .string(annWebsite)])["messages"]?.arrayValue?.first
        XCTAssertEqual(kept?["text"]?.stringValue, "  hello \n")
    }

    func testASendMovesTheSendersOwnReadMark() throws {
        hub = try TestHub()
        try hub.assign("wes", to: "ann", for: "website")
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try ann.result("subscribe", ["channel": .string(annWebsite)])
        for i in 1...2 { _ = try ann.result("send", ["channel": .string(annWebsite), "text": .string("question \(i)"), "client_msg_id": .string("q\(i)")]) }
        // The agent replies without a read op (as a reply from another tab or the bridge would).
        let wes = try ChatClient(port: hub.port, token: TestHub.token("wes", .websiteAgent))
        func unread(_ c: ChatClient) throws -> Int64? {
            try c.result("conversations")["conversations"]?.arrayValue?.first { $0["channel"]?.stringValue == annWebsite }?["unread"]?.intValue
        }
        XCTAssertEqual(try unread(wes), 2, "two questions waiting")
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "On it", "client_msg_id": "r1"])
        XCTAssertEqual(try unread(wes), 0, "whoever replies has read what came before")
        XCTAssertEqual(try unread(ann), 1, "the reply is unread for the client; her own questions never were")
        // The client sees her questions read (her own live ticks), once.
        let tick = try ann.push("read")
        XCTAssertEqual(tick["user"]?.stringValue, "wes")
        XCTAssertEqual(tick["seq"]?.intValue, 3)
        // A second message in a row leaves the mark alone (nothing new was read): no tick.
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "Fixed", "client_msg_id": "r2"])
        XCTAssertTrue(ann.noPush("read", within: 0.3), "no tick for the agent's own second message")
        XCTAssertEqual(try unread(ann), 2, "the client has two replies to read")
    }

    // MARK: the executable's first run

    private func waitForStart(_ hub: HubProcess) throws -> (public: String, port: Int) {
        guard let line = hub.waitForLine(containing: "public listening"), let port = HubProcess.port(in: line) else {
            throw TestError("hub did not start: \(hub.outputLines) \(hub.standardError)")
        }
        return (line, port)
    }

    func testDevelopmentModeListensOnLoopbackAndSaysSo() throws {
        let dev = try HubProcess(["--port", "0", "--bridge-port", "0", "--data", TestDirectory.make("first-run")])
        defer { dev.signal(SIGKILL) }
        let (line, port) = try waitForStart(dev)
        XCTAssertTrue(line.contains("http://127.0.0.1:"), "development mode defaults to loopback: \(line)")
        let banner = dev.waitForLine(containing: "DEVELOPMENT MODE")
        XCTAssertNotNil(banner, "one line says this is development mode: \(dev.outputLines)")
        XCTAssertTrue(banner?.contains("/dev/token") == true && banner?.contains("--no-dev") == true, banner ?? "")
        // The demo sign-in answers this machine; a page of another site that reached it (DNS
        // rebinding: the socket is loopback, Host and Origin are not) is refused.
        XCTAssertEqual(try devToken(port: port, host: "127.0.0.1:\(port)").status, 200)
        XCTAssertEqual(try devToken(port: port, host: "localhost:\(port)", origin: "http://localhost:\(port)").status, 200)
        XCTAssertEqual(try devToken(port: port, host: "attacker.example:\(port)", origin: "http://attacker.example:\(port)").status, 403)
        XCTAssertEqual(try devToken(port: port, host: "127.0.0.1:\(port)", origin: "http://attacker.example").status, 403)
        // An explicit --host is honoured; --no-dev listens everywhere by default.
        let explicit = try HubProcess(["--host", "0.0.0.0", "--port", "0", "--bridge-port", "0", "--data", TestDirectory.make("first-run")])
        defer { explicit.signal(SIGKILL) }
        XCTAssertTrue(try waitForStart(explicit).public.contains("http://0.0.0.0:"))
        let prod = try HubProcess(["--no-dev", "--port", "0", "--bridge-port", "0", "--data", TestDirectory.make("first-run"),
                                   "--jwt-secret", TestHub.secret, "--bridge-key", TestHub.bridgeKey])
        defer { prod.signal(SIGKILL) }
        XCTAssertTrue(try waitForStart(prod).public.contains("http://0.0.0.0:"))
        XCTAssertFalse(prod.outputLines.contains { $0.contains("DEVELOPMENT MODE") })
    }

    /// POST /dev/token over a real socket with the given Host (and Origin) header.
    private func devToken(port: Int, host: String, origin: String? = nil) throws -> (status: Int, body: String) {
        let s = try TestSocket(port: port)
        let body = #"{"user":"demo-admin"}"#
        var raw = "POST /dev/token HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nContent-Type: application/json\r\n"
        if let origin { raw += "Origin: \(origin)\r\n" }
        raw += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        try s.write(raw)
        let r = try s.readHTTPResponse()
        return (r.status, String(decoding: r.body, as: UTF8.self))
    }

    func testDevelopmentSignInRefusesCallersOffThisMachine() throws {
        let routes = ConsoleRoutes(dev: true, signer: JWTSigner(secret: Array(TestHub.secret.utf8)))
        func post(_ headers: [(String, String)]) -> HTTPRequest {
            HTTPRequest(method: "POST", target: "/dev/token", headers: headers, body: Array(#"{"user":"demo-admin"}"#.utf8))
        }
        let json = ("content-type", "application/json")
        let request = post([("host", "127.0.0.1:8080"), json])
        let users = HTTPRequest(method: "GET", target: "/dev/users", headers: [("host", "localhost:8080")])
        for peer in ["10.0.0.7:5000", "192.168.1.2:80", "[2001:db8::1]:443", "[::ffff:10.1.2.3]:9", "?", "", "128.0.0.1:1"] {
            XCTAssertEqual(routes.handle(request, peer: PeerAddress(text: peer))?.status.code, 403, peer)
            XCTAssertEqual(routes.handle(users, peer: PeerAddress(text: peer))?.status.code, 403, peer)
        }
        for peer in ["127.0.0.1:5000", "127.8.9.10:1", "[::1]:443", "[::ffff:127.0.0.1]:9"] {
            XCTAssertEqual(routes.handle(request, peer: PeerAddress(text: peer))?.status.code, 200, peer)
            XCTAssertEqual(routes.handle(users, peer: PeerAddress(text: peer))?.status.code, 200, peer)
        }
        // A loopback socket is not enough: the names the request carries must be local too, it
        // must not have come through a proxy, and the POST must be JSON.
        let refused: [[(String, String)]] = [
            [("host", "attacker.example"), json],
            [("host", "attacker.example:8080"), json],
            [("host", "127.0.0.1.attacker.example"), json],
            [("host", "localhost:80x"), json],
            [json],
            [("host", "127.0.0.1:8080"), ("origin", "http://attacker.example"), json],
            [("host", "127.0.0.1:8080"), ("origin", "null"), json],
            [("host", "127.0.0.1:8080"), ("x-forwarded-for", "203.0.113.9"), json],
            [("host", "127.0.0.1:8080"), ("forwarded", "for=203.0.113.9"), json],
            [("host", "127.0.0.1:8080"), ("via", "1.1 proxy"), json],
            [("host", "127.0.0.1:8080"), ("content-type", "text/plain")],
            [("host", "127.0.0.1:8080")],
        ]
        for headers in refused {
            XCTAssertEqual(routes.handle(post(headers), peer: PeerAddress(text: "127.0.0.1:5000"))?.status.code, 403, "\(headers)")
        }
        for headers in [[("host", "LOCALHOST"), json], [("host", "[::1]:8080"), ("origin", "https://[::1]:8080"), json],
                        [("host", "127.0.0.1"), ("origin", "http://localhost:8080"), ("content-type", "application/json; charset=utf-8")]] {
            XCTAssertEqual(routes.handle(post(headers), peer: PeerAddress(text: "127.0.0.1:5000"))?.status.code, 200, "\(headers)")
        }
        // Outside development mode there is no sign-in at all, from anywhere.
        let prod = ConsoleRoutes(dev: false, signer: JWTSigner(secret: Array(TestHub.secret.utf8)))
        XCTAssertEqual(prod.handle(request, peer: PeerAddress(text: "127.0.0.1:1"))?.status.code, 404)
    }

    func testAHubThatCannotListenWritesNothing() throws {
        // Another process's listener on 127.0.0.1 (this test's own socket, no SO_REUSEPORT).
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        XCTAssertTrue(bound)
        let held = Int(UInt16(bigEndian: addr.sin_port))
        for args in [["--port", "\(held)", "--bridge-port", "0"], ["--port", "0", "--bridge-port", "\(held)"]] {
            let data = TestDirectory.make("first-run") + "/fresh"
            let hub = try HubProcess(args + ["--data", data])
            XCTAssertEqual(hub.waitForExit(), 2)
            XCTAssertTrue(hub.standardError.contains("Address already in use"), hub.standardError)
            XCTAssertFalse(FileManager.default.fileExists(atPath: data), "nothing written to \(data): \(hub.outputLines)")
        }
        // Nor one whose certificate cannot be read.
        let data = TestDirectory.make("first-run") + "/fresh"
        let tls = try HubProcess(["--port", "0", "--bridge-port", "0", "--data", data,
                                  "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"])
        XCTAssertEqual(tls.waitForExit(), 2)
        XCTAssertTrue(tls.standardError.contains("cannot read TLS certificate"), tls.standardError)
        XCTAssertFalse(FileManager.default.fileExists(atPath: data), "nothing written to \(data)")
    }

    func testErrorsNameWhatTheUserTypedAndHelpAndVersionWork() throws {
        let env = try HubProcess([], environment: ["MONTROSE_PORT": "abc"])
        XCTAssertEqual(env.waitForExit(), 2)
        XCTAssertTrue(env.standardError.contains("MONTROSE_PORT expects a whole number"), env.standardError)
        XCTAssertFalse(env.standardError.contains("--port"), env.standardError)
        let flag = try HubProcess(["--port", "abc"])
        XCTAssertEqual(flag.waitForExit(), 2)
        XCTAssertTrue(flag.standardError.contains("--port expects a whole number"), flag.standardError)
        // Off is the other way: MONTROSE_DEV=0 is production (and so it needs the secrets).
        for off in [["MONTROSE_DEV": "0"], ["MONTROSE_DEV": "false"], ["MONTROSE_NO_DEV": "yes"]] {
            let prod = try HubProcess(["--port", "0", "--bridge-port", "0", "--data", TestDirectory.make("first-run")], environment: off)
            XCTAssertEqual(prod.waitForExit(), 2, "\(off)")
            XCTAssertTrue(prod.standardError.contains("required outside development mode"), "\(off): \(prod.standardError)")
        }
        // The two listeners may not share an address.
        let same = try HubProcess(["--port", "18555", "--bridge-port", "18555"])
        XCTAssertEqual(same.waitForExit(), 2)
        XCTAssertTrue(same.standardError.contains("need different ports"), same.standardError)
        let switchValue = try HubProcess([], environment: ["MONTROSE_NO_DEV": "perhaps"])
        XCTAssertEqual(switchValue.waitForExit(), 2)
        XCTAssertTrue(switchValue.standardError.contains("MONTROSE_NO_DEV"), switchValue.standardError)
        for help in [["-h"], ["--help"], ["--port", "abc", "-h"]] {
            let h = try HubProcess(help)
            XCTAssertEqual(h.waitForExit(), 0, "\(help)")
            XCTAssertTrue(h.waitForLine(containing: "usage: montrose-hub") != nil, "\(help): \(h.outputLines)")
        }
        let version = try HubProcess(["--version"])
        XCTAssertEqual(version.waitForExit(), 0)
        XCTAssertNotNil(version.waitForLine(containing: "montrose-hub 0."), "\(version.outputLines)")
    }

    func testStatsShowWhatTheStoreHoldsBesideWhatThisProcessStored() throws {
        let data = TestDirectory.make("first-run-stats")
        hub = try TestHub(configure: { $0.dataDir = data })
        try hub.assign("wes", to: "ann", for: "website")
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        for i in 1...3 { _ = try ann.result("send", ["channel": .string(annWebsite), "text": .string("m\(i)"), "client_msg_id": .string("m\(i)")]) }
        try hub.bridge.user("ann", "client")
        XCTAssertEqual(try hub.bridge.post("/v1/notifications", #"{"to":{"users":["ann"]},"service":"wallet","category":"payments","title":"Paid"}"#).status, 201)
        hub.stop(keepingStore: true)
        // A second run on the same data: one more message.
        hub = try TestHub(database: hub.database, configure: { $0.dataDir = data })
        let again = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try again.result("send", ["channel": .string(annWebsite), "text": "m4", "client_msg_id": "m4"])
        let admin = try ChatClient(port: hub.port, token: TestHub.token("root", .admin))
        let stats = try admin.result("admin.stats")
        XCTAssertEqual(stats["messages_total"]?.intValue, 4, "every message in the store: \(stats.text)")
        XCTAssertEqual(stats["messages_stored"]?.intValue, 1, "since this process started")
        // The wallet notification, and the agent's one `messages` notification for the conversation.
        XCTAssertEqual(stats["notifications_total"]?.intValue, 2, stats.text)
        let bridged = try hub.bridge.get("/v1/stats").json
        XCTAssertEqual(bridged["messages_total"]?.intValue, 4, bridged.text)
        XCTAssertEqual(bridged["notifications_total"]?.intValue, 2, bridged.text)
    }
}

extension FirstRunTests {
    /// `montrose-hub store new-epoch`: an operator marks a restored store; the next start serves
    /// the new epoch, so clients with positions from before resync instead of keeping a gap.
    func testStoreNewEpochGivesTheNextStartAnotherEpoch() throws {
        let data = TestDirectory.make("new-epoch")
        func epochOfARun() throws -> String {
            let hub = try HubProcess(["--port", "0", "--bridge-port", "0", "--data", data,
                                      "--jwt-secret", TestHub.secret, "--bridge-key", TestHub.bridgeKey])
            defer { hub.signal(SIGTERM); _ = hub.waitForExit() }
            guard let line = hub.waitForLine(containing: "public listening"), let port = HubProcess.port(in: line) else {
                throw TestError("hub did not start: \(hub.outputLines) \(hub.standardError)")
            }
            let client = try ChatClient(port: port, token: TestHub.token("ann", .client))
            return try XCTUnwrap(try client.result("subscribe", ["channel": "user:ann"])["epoch"]?.stringValue)
        }
        let first = try epochOfARun()
        XCTAssertEqual(try epochOfARun(), first, "a restart keeps the epoch")
        let command = try HubProcess(["store", "new-epoch", "--data", data])
        XCTAssertEqual(command.waitForExit(), 0, command.standardError)
        XCTAssertNotNil(command.waitForLine(containing: "new epoch"), "\(command.outputLines)")
        XCTAssertNotEqual(try epochOfARun(), first, "after new-epoch the next start serves another epoch")
        let wrong = try HubProcess(["store", "rewind", "--data", data])
        XCTAssertEqual(wrong.waitForExit(), 2)
        XCTAssertTrue(wrong.standardError.contains("unknown store command"), wrong.standardError)
    }
}
