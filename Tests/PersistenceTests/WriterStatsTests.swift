import Foundation
import XCTest
@testable import Persistence

// Batch counters counted by several writers at once: the largest batch never goes down.
final class WriterStatsTests: XCTestCase {
    func testTheLargestBatchIsTheLargestWhenWritersCountAtOnce() {
        for stats in [WriterStats(), PGWriterStats()] as [any BatchCounters] {
            DispatchQueue.concurrentPerform(iterations: 8) { writer in
                for n in 1...2_000 { stats.recordBatch((n * 7 + writer) % 1_000 + 1) }
            }
            XCTAssertEqual(stats.batches.load(ordering: .relaxed), 16_000)
            XCTAssertEqual(stats.largestBatch.load(ordering: .relaxed), 1_000)
            stats.recordBatch(3)
            XCTAssertEqual(stats.largestBatch.load(ordering: .relaxed), 1_000, "a smaller batch never lowers it")
        }
    }
}
