import XCTest
@testable import Protocol

// The op list: the names clients send, and which ops end in a store job (bounded in flight,
// timed when their reply leaves).
final class OpTests: XCTestCase {
    func testTheOpNamesAreTheProtocols() {
        XCTAssertEqual(Op.allCases.map(\.rawValue), ["auth", "subscribe", "unsubscribe", "send", "history", "read", "typing",
                                                    "presence", "status", "conversations", "notifications", "notifications.read",
                                                    "ping", "admin.broadcast", "admin.stats", "admin.report", "conversation.status", "claim", "assign",
                                                    "edit", "delete", "edits", "search"])
        XCTAssertNil(Op(rawValue: "Send"), "op names are case-sensitive")
    }

    func testStoreBackedOps() {
        XCTAssertEqual(Set(Op.allCases.filter(\.isStoreBacked).map(\.rawValue)),
                       ["subscribe", "send", "history", "read", "conversations", "notifications", "notifications.read",
                        "admin.broadcast", "admin.stats", "admin.report", "conversation.status", "claim", "assign",
                        "edit", "delete", "edits", "search"])
    }
}
