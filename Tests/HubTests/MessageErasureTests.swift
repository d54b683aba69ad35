import Foundation
import Notifications
@testable import Persistence
import Protocol
import XCTest
@testable import Hub

// A deleted message's text is erased from the SQLite file, not only hidden (docs/protocol.md
// "Edit and delete"): the file's bytes are read after the hub stopped (its last checkpoint
// folds the WAL in), before and after the delete, so the check is seen to find the text first.
// Every copy the hub makes is covered: the message row, its edit history, the notification
// that quoted it and the webhook bodies that carried it. (SQLite only: on PostgreSQL old row
// versions stay until VACUUM, see docs/hardening.md "Erasure".)
final class MessageErasureTests: XCTestCase {
    let original = "zanzibar-quartz-7731 is my card PIN"
    let revised = "zanzibar-quartz-7731 was a typo"
    let marker = "zanzibar"

    /// Every byte of the store's files (the database and, if any is left, its WAL).
    private func storeBytes(_ data: String) throws -> Data {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: data + "/hub.sqlite"))
        for suffix in ["-wal", "-journal"] {
            if let extra = try? Data(contentsOf: URL(fileURLWithPath: data + "/hub.sqlite" + suffix)) { bytes.append(extra) }
        }
        return bytes
    }

    private func occurrences(_ data: String) throws -> Int {
        let bytes = try storeBytes(data), needle = Data(marker.utf8)
        var count = 0, from = bytes.startIndex
        while let r = bytes.range(of: needle, in: from..<bytes.endIndex) { count += 1; from = r.upperBound }
        return count
    }

    func testADeletedMessagesTextIsAbsentFromTheDatabaseFile() throws {
        let data = TestDirectory.make("erasure")
        let topology = TestTopology.single
        // Webhooks on, to a port nobody listens on: the events stay in the outbox with the text.
        let configure: (inout Configuration) -> Void = { c in
            c.dataDir = data
            c.webhook = try? WebhookEndpoint.parse("http://127.0.0.1:9/hooks").get()
            c.webhookSecret = "whsec-erasure-0123456789"
        }
        var hub = try TestHub(topology: topology, configure: configure)
        try hub.assign("wes", to: "ann", for: "website")
        let channel = "conv:website:ann"
        var ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        // wes is offline: his `messages` notification quotes the text.
        let seq = try ann.result("send", ["channel": .string(channel), "text": .string(original), "client_msg_id": "a1"])["seq"] ?? .null
        _ = try ann.result("edit", ["channel": .string(channel), "seq": seq, "text": .string(revised)])
        hub.stop()
        XCTAssertGreaterThan(try occurrences(data), 3, "the message, its edit history, the notification and the webhook bodies hold it")

        hub = try TestHub(topology: topology, configure: configure)
        ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try ann.result("delete", ["channel": .string(channel), "seq": seq])
        let wes = try ChatClient(port: hub.port, token: TestHub.token("wes", .websiteAgent))
        let history = try wes.result("history", ["channel": .string(channel)])["messages"]?.arrayValue ?? []
        XCTAssertEqual(history.first?["deleted"]?.boolValue, true)
        hub.stop()
        XCTAssertEqual(try occurrences(data), 0, "no copy of the text is left anywhere in the file")
    }
}
