import Foundation
import Persistence
import Protocol
import XCTest
@testable import Hub

// Attachments over real sockets (docs/protocol.md "Attachments"): references on an allowed
// origin are stored and shown everywhere a message is; anything else is refused with the
// field named, on the WebSocket and on the bridge alike.
final class AttachmentTests: XCTestCase {
    var hub: TestHub!
    let channel = "conv:website:ann"
    let files = "https://files.montrose.test"

    override func setUpWithError() throws {
        hub = try TestHub(configure: { [files] in $0.attachmentOrigins = [AttachmentOrigin.parse(files)!] })
        try hub.assign("wes", to: "ann", for: "website")
    }
    override func tearDown() { hub.stop() }

    private func client(_ id: String, _ role: Role) throws -> ChatClient {
        try ChatClient(port: hub.port, token: TestHub.token(id, role))
    }

    private func attachment(_ url: String, name: String = "site-v2.zip", size: Int64 = 1_048_576,
                            type: String = "application/zip") -> JSON {
        .object(["url": .string(url), "name": .string(name), "size": .int(size), "content_type": .string(type)])
    }

    private func send(_ c: ChatClient, text: String = "Version 2 of the site", _ attachments: [JSON]) throws -> JSON {
        try c.request("send", ["channel": .string(channel), "text": .string(text), "client_msg_id": .string(UUID().uuidString),
                               "attachments": .array(attachments)])
    }

    func testAttachmentsOnAnAllowedOriginAreStoredPushedAndInHistory() throws {
        let ann = try client("ann", .client), wes = try client("wes", .websiteAgent)
        _ = try wes.result("subscribe", ["channel": .string(channel)])
        let sent = try send(ann, [attachment("\(files)/p/42/site-v2.zip"),
                                  attachment("\(files):443/p/42/home.png", name: "home.png", size: 20_480, type: "Image/PNG")])
        XCTAssertEqual(sent["ok"]?.boolValue, true, sent.text)
        let pushed = try wes.push("message")["attachments"]?.arrayValue ?? []
        XCTAssertEqual(pushed.count, 2)
        XCTAssertEqual(pushed[0]["url"]?.stringValue, "\(files)/p/42/site-v2.zip")
        XCTAssertEqual(pushed[0]["name"]?.stringValue, "site-v2.zip")
        XCTAssertEqual(pushed[0]["size"]?.intValue, 1_048_576)
        XCTAssertEqual(pushed[1]["content_type"]?.stringValue, "image/png", "media types are lower-cased")
        let item = try wes.result("history", ["channel": .string(channel)])["messages"]?.arrayValue?.first
        XCTAssertEqual(item?["attachments"]?.arrayValue?.count, 2)
        // A file on its own: no text needed.
        let alone = try send(ann, text: "", [attachment("\(files)/p/42/logo.svg", name: "logo.svg", type: "image/svg+xml")])
        XCTAssertEqual(alone["ok"]?.boolValue, true, alone.text)
        XCTAssertEqual(try wes.push("message")["text"]?.stringValue, "")
        // Deleting erases them with the text.
        let seq = sent["result"]?["seq"]?.intValue ?? 0
        _ = try ann.result("delete", ["channel": .string(channel), "seq": .int(seq)])
        let tomb = try wes.result("history", ["channel": .string(channel)])["messages"]?.arrayValue?.first
        XCTAssertNil(tomb?["attachments"])
    }

    func testAnythingOffTheAllowListIsRefusedWithTheFieldNamed() throws {
        let ann = try client("ann", .client)
        let cases: [(String, [JSON], String)] = [
            ("another origin", [attachment("https://evil.example/x.zip")], "attachments[0].url"),
            ("plain http outside development mode", [attachment("http://files.montrose.test/x.zip")], "attachments[0].url"),
            ("user info naming another host", [attachment("https://files.montrose.test@evil.example/x.zip")], "attachments[0].url"),
            ("another port", [attachment("https://files.montrose.test:8443/x.zip")], "attachments[0].url"),
            ("a javascript: URL", [attachment("javascript:alert(1)")], "attachments[0].url"),
            ("white space in the URL", [attachment("https://files.montrose.test/a b")], "attachments[0].url"),
            ("a negative size", [attachment("\(files)/x", size: -1)], "attachments[0].size"),
            ("a size over 5 GiB", [attachment("\(files)/x", size: (5 << 30) + 1)], "attachments[0].size"),
            ("a bad media type", [attachment("\(files)/x", type: "zip")], "attachments[0].content_type"),
            ("a name of control characters", [attachment("\(files)/x", name: "\u{202E}\u{0001}")], "attachments[0].name"),
            ("the second one bad", [attachment("\(files)/ok"), attachment("ftp://files.montrose.test/x")], "attachments[1].url"),
            ("eleven", Array(repeating: attachment("\(files)/x"), count: 11), "attachments"),
            ("not objects", [.string("\(files)/x")], "attachments[0]"),
        ]
        for (why, list, field) in cases {
            let r = try send(ann, list)
            XCTAssertEqual(r["error"]?["code"]?.stringValue, "bad_request", "\(why): \(r.text)")
            XCTAssertTrue(r["error"]?["message"]?.stringValue?.hasPrefix(field + ":") ?? false, "\(why): \(r.text)")
        }
        let notArray = try ann.request("send", ["channel": .string(channel), "text": "x", "client_msg_id": "c", "attachments": "x"])
        XCTAssertEqual(notArray["error"]?["code"]?.stringValue, "bad_request")
        let blank = try send(ann, text: "  ", [attachment("\(files)/x")])
        XCTAssertEqual(blank["error"]?["code"]?.stringValue, "bad_request", "white space only is still refused")
        XCTAssertEqual(try ann.result("history", ["channel": .string(channel)])["messages"]?.arrayValue?.count, 0, "nothing stored")
    }

    func testNamesAreSanitisedForDisplay() throws {
        let ann = try client("ann", .client)
        let r = try send(ann, [attachment("\(files)/x", name: " ../invoice\u{202E}fdp.exe\u{0007} ")])
        XCTAssertEqual(r["ok"]?.boolValue, true, r.text)
        let item = try ann.result("history", ["channel": .string(channel)])["messages"]?.arrayValue?.first
        XCTAssertEqual(item?["attachments"]?[0]?["name"]?.stringValue, "_invoicefdp.exe")
    }

    func testTheBridgeAcceptsTheSameAndRefusesTheSame() throws {
        let ok = try hub.bridge.post("/v1/conversations/website/ann/messages",
                                     #"{"text":"Your invoice","attachments":[{"url":"\#(files)/inv/7.pdf","name":"7.pdf","size":2048,"content_type":"application/pdf"}]}"#)
        XCTAssertEqual(ok.status, 201, ok.text)
        XCTAssertEqual(ok.json["attachments"]?[0]?["url"]?.stringValue, "\(files)/inv/7.pdf")
        let bad = try hub.bridge.post("/v1/conversations/website/ann/messages",
                                      #"{"text":"x","attachments":[{"url":"https://elsewhere.test/7.pdf","name":"7.pdf","size":1,"content_type":"application/pdf"}]}"#)
        XCTAssertEqual(bad.status, 422, bad.text)
        XCTAssertTrue(bad.errorMessage.hasPrefix("attachments[0].url:"), bad.text)
        let alone = try hub.bridge.post("/v1/conversations/website/ann/messages",
                                        #"{"attachments":[{"url":"\#(files)/a.png","name":"a.png","size":1,"content_type":"image/png"}]}"#)
        XCTAssertEqual(alone.status, 201, alone.text)
        XCTAssertEqual(try hub.bridge.post("/v1/conversations/website/ann/messages", #"{}"#).status, 422, "text or attachments")
    }

    func testAHubWithNoAllowedOriginTakesNoAttachments() throws {
        hub.stop()
        hub = try TestHub()
        let ann = try client("ann", .client)
        let r = try send(ann, [attachment("\(files)/x")])
        XCTAssertEqual(r["error"]?["code"]?.stringValue, "bad_request")
        XCTAssertTrue(r["error"]?["message"]?.stringValue?.contains("--attachment-origin") ?? false, r.text)
    }
}
