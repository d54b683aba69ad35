import XCTest
import Core
import Dispatch
@testable import Notifications

/// What the loops record one at a time is stored in chunks, sorted when an order is given
/// (a broadcast's receipts go into their b-trees in key order).
final class BatchRecorderTests: XCTestCase {
    func testFlushStoresEverythingInChunksInTheGivenOrder() {
        let stored = Locked<[[Int]]>([])
        let recorder = BatchRecorder<Int>(chunk: 4, delayMs: 60_000, order: { $0 < $1 }) { chunk in
            stored.withLock { $0.append(chunk) }
        }
        for n in [9, 3, 7, 1, 8, 2, 6, 4, 5, 0] { recorder.record(n) }
        recorder.flush()
        XCTAssertEqual(stored.withLock { $0 }, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        recorder.flush() // nothing left: nothing stored again
        XCTAssertEqual(stored.withLock { $0.count }, 3)
    }

    func testWithoutAnOrderFactsKeepTheOrderTheyCameIn() {
        let stored = Locked<[Int]>([])
        let recorder = BatchRecorder<Int>(chunk: 100, delayMs: 60_000) { chunk in stored.withLock { $0 += chunk } }
        for n in [3, 1, 2] { recorder.record(n) }
        recorder.flush()
        XCTAssertEqual(stored.withLock { $0 }, [3, 1, 2])
    }

    func testAFirstFactSchedulesTheDelayedStore() {
        let done = DispatchSemaphore(value: 0)
        let recorder = BatchRecorder<Int>(chunk: 10, delayMs: 20) { chunk in
            XCTAssertEqual(chunk, [1, 2])
            done.signal()
        }
        recorder.record(1)
        recorder.record(2)
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success, "stored about 20 ms after the first fact")
    }
}
