import Foundation
import Protocol
import XCTest
@testable import Hub

// What the web console needs from the hub, over real sockets: its files, the development-mode
// demo sign-in (and its absence outside development mode), the admin ops and read marks.
final class ConsoleTests: XCTestCase {
    var hub: TestHub!
    override func tearDown() { hub?.stop() }

    private func get(_ path: String, method: String = "GET", body: String? = nil) throws -> BridgeClient.Answer {
        try BridgeClient(port: hub.port).send(method, path, body: body, key: nil)
    }

    func testTheConsoleFilesAreServedWithTheirTypesAndALockedDownPolicy() throws {
        hub = try TestHub()
        for (path, type) in [("/", "text/html"), ("/hub.js", "text/javascript"), ("/console.js", "text/javascript"),
                             ("/console.css", "text/css")] {
            let r = try get(path)
            XCTAssertEqual(r.status, 200, path)
            XCTAssertTrue(r.headers["content-type"]?.hasPrefix(type) ?? false, "\(path): \(r.headers)")
            XCTAssertTrue(r.headers["content-security-policy"]?.contains("default-src 'self'") ?? false)
            XCTAssertFalse(r.text.isEmpty)
        }
        XCTAssertEqual(try get("/hub.js", method: "POST", body: "{}").status, 405)
    }

    func testDemoSignInExistsOnlyInDevelopmentMode() throws {
        hub = try TestHub()
        let none = try get("/dev/users")
        XCTAssertEqual(none.status, 200, "TestHub runs with --no-dev: answered, but nobody to sign in as")
        XCTAssertEqual(none.json["dev"]?.boolValue, false)
        XCTAssertEqual(none.json["users"]?.arrayValue?.count, 0)
        XCTAssertEqual(try get("/dev/token", method: "POST", body: #"{"user":"demo-client"}"#).status, 404)
        hub.stop()
        hub = try TestHub { $0.dev = true }
        let users = try get("/dev/users")
        XCTAssertEqual(users.status, 200)
        XCTAssertEqual(users.json["users"]?.arrayValue?.compactMap { $0["role"]?.stringValue }.sorted(),
                       ["admin", "client", "marketing_agent", "website_agent"])
        let minted = try get("/dev/token", method: "POST", body: #"{"user":"demo-client"}"#)
        XCTAssertEqual(minted.status, 200, minted.text)
        let token = try XCTUnwrap(minted.json["token"]?.stringValue)
        XCTAssertEqual(try get("/dev/token", method: "POST", body: #"{"user":"someone-else"}"#).status, 422)
        // The seeded console is alive: assignments, messages and notifications are there.
        let cleo = try ChatClient(port: hub.port, token: token)
        let convs = try cleo.result("conversations")["conversations"]?.arrayValue ?? []
        XCTAssertEqual(convs.first { $0["channel"]?.stringValue == "conv:website:demo-client" }?["agents"], ["demo-web"])
        XCTAssertGreaterThan(try cleo.result("notifications")["unread"]?["total"]?.intValue ?? 0, 0)
        let history = try cleo.result("history", ["channel": "conv:website:demo-client"])
        XCTAssertEqual(history["messages"]?.arrayValue?.count, 3)
    }

    func testAdminOpsAreForAdminsOnly() throws {
        hub = try TestHub()
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        XCTAssertEqual(try ann.errorCode("admin.broadcast", ["title": "x"]), "forbidden")
        XCTAssertEqual(try ann.errorCode("admin.stats"), "forbidden")
        let ada = try ChatClient(port: hub.port, token: TestHub.token("ada", .admin))
        XCTAssertEqual(try ada.errorCode("admin.broadcast", ["title": ""]), "bad_request")
        XCTAssertEqual(try ada.errorCode("admin.broadcast", ["title": "x", "audience": 5]), "bad_request", "not silently everyone")
        XCTAssertEqual(try ada.errorCode("admin.broadcast", ["title": "x", "body": ["not", "text"]]), "bad_request")
        XCTAssertEqual(try ada.errorCode("conversations", ["service": 5]), "bad_request", "not silently unfiltered")
        let sent = try ada.result("admin.broadcast", ["audience": "client", "title": "Hello clients"])
        XCTAssertEqual(sent["delivered_live"]?.intValue, 1)
        XCTAssertEqual(try ann.push("broadcast")["title"]?.stringValue, "Hello clients")
        let stats = try ada.result("admin.stats")
        XCTAssertEqual(stats["users_online"]?.intValue, 2)
        XCTAssertEqual(stats["online_by_role"]?["client"]?.intValue, 1)
    }

    func testSubscribeCarriesTheOtherParticipantsReadMarks() throws {
        hub = try TestHub()
        try hub.assign("wes", to: "ann", for: "website")
        let wes = try ChatClient(port: hub.port, token: TestHub.token("wes", .websiteAgent))
        for i in 1...3 {
            _ = try wes.result("send", ["channel": "conv:website:ann", "text": .string("m\(i)"), "client_msg_id": .string("w\(i)")])
        }
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try ann.result("subscribe", ["channel": "conv:website:ann"])
        _ = try ann.result("read", ["channel": "conv:website:ann", "seq": 2])
        let ada = try ChatClient(port: hub.port, token: TestHub.token("ada", .admin))
        _ = try ada.result("subscribe", ["channel": "conv:website:ann"])
        _ = try ada.result("read", ["channel": "conv:website:ann", "seq": 3]) // an observer: no trace
        let again = try wes.result("subscribe", ["channel": "conv:website:ann"])
        XCTAssertEqual(again["read_marks"], [["user": "ann", "seq": 2]])
    }

    /// The page's images may come from the hub and from exactly the configured attachment
    /// origins (an attachment's thumbnail): no wildcard, no scheme-wide source, nothing else.
    func testThePolicyAllowsImagesFromExactlyTheAttachmentOrigins() throws {
        hub = try TestHub {
            $0.attachmentOrigins = ["https://files.example.com", "https://cdn.example.org:8443", "https://files.example.com"]
                .compactMap(AttachmentOrigin.parse)
            $0.editWindowMs = 120_000
        }
        for path in ["/", "/console.js", "/hub.js", "/messages.js", "/search.js", "/attach.js"] {
            let r = try get(path)
            XCTAssertEqual(r.status, 200, path)
            let policy = try XCTUnwrap(r.headers["content-security-policy"], path)
            let directives = policy.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            let images = try XCTUnwrap(directives.first { $0.hasPrefix("img-src ") }, policy)
            XCTAssertEqual(images.split(separator: " ").dropFirst().map(String.init),
                           ["'self'", "data:", "https://files.example.com", "https://cdn.example.org:8443"],
                           "\(path): img-src names the hub and the attachment origins, each once: \(policy)")
            XCTAssertFalse(policy.contains("*"), policy)
            for directive in directives where !directive.hasPrefix("img-src ") {
                XCTAssertFalse(directive.contains("example"), "only img-src is widened: \(policy)")
            }
        }
        let settings = try get("/console/settings")
        XCTAssertEqual(settings.status, 200, settings.text)
        XCTAssertEqual(settings.json["attachment_origins"], ["https://files.example.com", "https://cdn.example.org:8443"])
        XCTAssertEqual(settings.json["edit_window_ms"]?.intValue, 120_000)
        XCTAssertEqual(try get("/console/settings", method: "POST", body: "{}").status, 405)
    }

    func testWithoutAttachmentOriginsImagesComeFromTheHubOnly() throws {
        hub = try TestHub()
        let policy = try XCTUnwrap(try get("/").headers["content-security-policy"])
        XCTAssertTrue(policy.contains("img-src 'self' data:;"), policy)
        let settings = try get("/console/settings")
        XCTAssertEqual(settings.json["attachment_origins"], [])
        XCTAssertEqual(settings.json["edit_window_ms"]?.intValue, 900_000, "the contract's default: 15 minutes")
    }
}
