import Foundation
import Protocol
import XCTest
@testable import Hub

// The mail outbox over a real SMTP conversation with a sink server inside the test: mail sent
// at once, fallback mail only for who did not see the notification, retries after a 4xx,
// giving up after a 5xx, and the outbox surviving a restart.
final class MailTests: XCTestCase {
    var sink: SMTPSink!
    var hubs: [TestHub] = []

    override func setUpWithError() throws { sink = try SMTPSink() }
    override func tearDown() {
        for h in hubs { h.stop() }
        sink.stop()
    }

    /// `restarting`: a hub stopped with `stop(keepingStore: true)` whose store this one takes over.
    private func hub(smtp: Bool = true, dataDir: String? = nil, restarting previous: TestHub? = nil,
                     fallbackMs: Int64 = 600_000) throws -> TestHub {
        let port = sink.port
        let h = try TestHub(database: previous?.database) { c in
            if smtp {
                c.smtp = "127.0.0.1:\(port)"
                c.smtpFrom = "hub@montrose.test"
            }
            c.smtpRetryMs = 200
            c.emailFallbackDelayMs = fallbackMs
            if let dataDir { c.dataDir = dataDir }
        }
        hubs.append(h)
        return h
    }

    private func notify(_ hub: TestHub, _ user: String, email: String, title: String = "Invoice paid") throws -> Int64 {
        let r = try hub.bridge.post("/v1/notifications", """
            {"to":{"users":["\(user)"]},"service":"wallet","category":"payments","title":"\(title)","body":"Thank you","email":"\(email)"}
            """)
        XCTAssertEqual(r.status, 201, r.text)
        return try XCTUnwrap(r.json["ids"]?[0]?.intValue)
    }

    /// Waits until the receipt's email state is `state` (or time runs out) and returns it.
    private func emailState(_ hub: TestHub, _ id: Int64, becomes state: String, within seconds: TimeInterval = 5) throws -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        var last: String?
        repeat {
            last = try hub.bridge.get("/v1/notifications/\(id)").json["recipients"]?[0]?["email"]?.stringValue
            if last == state { return last }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        return last
    }

    func testMailNowIsDeliveredOverSMTP() throws {
        let hub = try hub()
        try hub.bridge.user("ann", "client", email: "ann@example.com")
        let id = try notify(hub, "ann", email: "now", title: "Invoice paid")
        let mails = sink.waitForMail(count: 1, timeout: 5)
        XCTAssertEqual(mails.count, 1)
        XCTAssertEqual(mails.first?.to, ["ann@example.com"])
        XCTAssertEqual(mails.first?.from, "hub@montrose.test")
        XCTAssertTrue(mails.first?.data.contains("Subject: Invoice paid") ?? false, mails.first?.data ?? "")
        XCTAssertEqual(try emailState(hub, id, becomes: "sent"), "sent")
    }

    func testFallbackMailGoesOnlyToWhoNeitherReadItNorWasOnline() throws {
        let hub = try hub(fallbackMs: 600)
        try hub.bridge.user("off", "client", email: "off@example.com")
        try hub.bridge.user("ann", "client", email: "ann@example.com")
        let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        let forOff = try notify(hub, "off", email: "fallback", title: "Renewal due")
        let forAnn = try notify(hub, "ann", email: "fallback", title: "Renewal due")
        let pushed = try ann.push("notification")
        _ = try ann.result("notifications.read", ["ids": [pushed["id"] ?? .null]])
        XCTAssertEqual(try emailState(hub, forOff, becomes: "sent"), "sent", "offline and unread: mailed after the delay")
        XCTAssertEqual(try emailState(hub, forAnn, becomes: "skipped"), "skipped", "read in time: no mail")
        let mails = sink.waitForMail(count: 1, timeout: 1)
        XCTAssertEqual(mails.map(\.to), [["off@example.com"]])
        // Not read, but the user connected during the delay: no mail either.
        let carl = try notify(hub, "ann", email: "fallback", title: "Seen in the bell")
        XCTAssertEqual(try ann.push("notification")["id"]?.intValue, carl)
        XCTAssertEqual(try emailState(hub, carl, becomes: "skipped"), "skipped")
        XCTAssertEqual(sink.waitForMail(count: 2, timeout: 0.3).count, 1)
    }

    func testTemporaryFailureIsRetriedAndPermanentFailureIsGivenUp() throws {
        let hub = try hub()
        try hub.bridge.user("ann", "client", email: "ann@example.com")
        sink.failNext(1, code: 451)
        let retried = try notify(hub, "ann", email: "now")
        XCTAssertEqual(try emailState(hub, retried, becomes: "sent"), "sent", "delivered on the retry")
        XCTAssertEqual(sink.attempts, 2, "one 451, then the retry")

        sink.rejectAll(code: 550)
        let refused = try notify(hub, "ann", email: "now", title: "Never delivered")
        XCTAssertEqual(try emailState(hub, refused, becomes: "failed"), "failed")
        let attempts = sink.attempts
        Thread.sleep(forTimeInterval: 0.8) // several retry periods
        XCTAssertEqual(sink.attempts, attempts, "a 5xx is not retried")
        let stats = try hub.bridge.get("/v1/stats").json["outbox"]
        XCTAssertEqual(stats?["failed"]?.intValue, 1)
        XCTAssertEqual(stats?["sent"]?.intValue, 1)
        // The failed address is remembered: later mail to it is not even attempted...
        let later = try notify(hub, "ann", email: "now", title: "Also not to that address")
        XCTAssertEqual(try emailState(hub, later, becomes: "skipped"), "skipped")
        XCTAssertEqual(sink.attempts, attempts)
        // ...until the user gets a new address.
        sink.acceptAll()
        try hub.bridge.user("ann", "client", email: "ann@new.example.com")
        let fresh = try notify(hub, "ann", email: "now", title: "To the new address")
        XCTAssertEqual(try emailState(hub, fresh, becomes: "sent"), "sent")
    }

    func testTheOutboxSurvivesARestart() throws {
        let dir = TestDirectory.make("hub-mail")
        let first = try hub(smtp: false, dataDir: dir)
        try first.bridge.user("ann", "client", email: "ann@example.com")
        let id = try notify(first, "ann", email: "now")
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(try emailState(first, id, becomes: "pending", within: 1), "pending", "kept: no SMTP server configured")
        XCTAssertEqual(try first.bridge.get("/v1/stats").json["outbox"]?["smtp_configured"]?.boolValue, false)
        first.stop(keepingStore: true)
        hubs.removeAll()
        XCTAssertTrue(sink.waitForMail(count: 1, timeout: 0.2).isEmpty)

        let second = try hub(smtp: true, dataDir: dir, restarting: first)
        XCTAssertEqual(sink.waitForMail(count: 1, timeout: 5).first?.to, ["ann@example.com"])
        XCTAssertEqual(try emailState(second, id, becomes: "sent"), "sent")
    }
}
