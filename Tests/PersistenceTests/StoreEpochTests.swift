import Foundation
import XCTest
import Notifications
@testable import Persistence

// The store's epoch: made once when the store is created, the same after every reopen (a
// restart must not make every client resync), different for another store.
final class StoreEpochTests: XCTestCase {
    func testTheEpochSurvivesAReopenAndDiffersBetweenStores() throws {
        let dir = NSTemporaryDirectory() + "epoch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func open(_ name: String) throws -> SQLiteStore {
            try SQLiteStore(path: dir + "/" + name, now: 1, messageWording: MessageNotificationText.wording)
        }
        let a = try open("a.sqlite")
        let epoch = a.epoch
        a.close()
        XCTAssertEqual(epoch.count, 16)
        XCTAssertTrue(epoch.allSatisfy { $0.isHexDigit })
        let reopened = try open("a.sqlite")
        XCTAssertEqual(reopened.epoch, epoch, "a reopen keeps the epoch")
        reopened.close()
        let b = try open("b.sqlite")
        XCTAssertNotEqual(b.epoch, epoch, "another store has another epoch")
        b.close()
    }

    func testANewEpochReplacesTheStoredOne() throws {
        let dir = NSTemporaryDirectory() + "epoch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/hub.sqlite"
        let store = try SQLiteStore(path: path, now: 1, messageWording: MessageNotificationText.wording)
        let old = store.epoch
        store.close()
        let new = try SQLiteStore.newEpoch(path: path)
        XCTAssertNotEqual(new, old)
        let reopened = try SQLiteStore(path: path, now: 1, messageWording: MessageNotificationText.wording)
        XCTAssertEqual(reopened.epoch, new)
        reopened.close()
    }
}
