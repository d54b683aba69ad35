import XCTest
import Core
@testable import Persistence

// The writer's job queue: bulk bookkeeping waits behind what someone waits for, one background
// job per batch, and nothing is lost at close.
final class JobQueueTests: XCTestCase {
    /// A job that says which it is when run (the connection is never touched).
    private func job(_ name: String, _ ran: Locked<[String]>) -> DatabaseJob {
        DatabaseJob(run: { _ in
            ran.withLock { $0.append(name) }
            return ({ _ in }, false)
        }, abandon: {})
    }

    /// Runs a batch's jobs (on an in-memory database they do not touch); their names in order.
    private func names(_ batch: [DatabaseJob]?, _ ran: Locked<[String]>) throws -> [String] {
        let db = try SQLiteConnection(path: ":memory:")
        ran.withLock { $0 = [] }
        for j in batch ?? [] { _ = j.run(db) }
        return ran.withLock { $0 }
    }

    func testABatchTakesEveryWaitingAnswerFirstAndOneBackgroundJob() throws {
        let q = JobQueue()
        let ran = Locked<[String]>([])
        XCTAssertTrue(q.push(job("seen-1", ran), background: true))
        XCTAssertTrue(q.push(job("seen-2", ran), background: true))
        XCTAssertTrue(q.push(job("send-1", ran)))
        XCTAssertTrue(q.push(job("send-2", ran)))
        XCTAssertEqual(q.count, 4)
        XCTAssertEqual(try names(q.take(max: 10), ran), ["send-1", "send-2", "seen-1"], "sends first, then one background job")
        XCTAssertTrue(q.push(job("send-3", ran)))
        XCTAssertEqual(try names(q.take(max: 10), ran), ["send-3", "seen-2"])
        XCTAssertEqual(q.count, 0)
    }

    func testABackgroundJobGetsItsSlotEvenWhenTheOtherLaneWouldFillTheBatch() throws {
        let q = JobQueue()
        let ran = Locked<[String]>([])
        XCTAssertTrue(q.push(job("seen", ran), background: true))
        for i in 1...3 { XCTAssertTrue(q.push(job("send-\(i)", ran))) }
        XCTAssertEqual(try names(q.take(max: 2), ran), ["send-1", "seen"], "never starved by a busy lane")
        XCTAssertEqual(try names(q.take(max: 2), ran), ["send-2", "send-3"], "a full batch when nothing waits in the background")
    }

    func testABackgroundBacklogOverItsBoundIsTakenInOneBatch() throws {
        let q = JobQueue()
        let ran = Locked<[String]>([])
        let backlog = JobQueue.backgroundBacklog + 6
        for i in 1...backlog { XCTAssertTrue(q.push(job("seen-\(i)", ran), background: true)) }
        XCTAssertTrue(q.push(job("send", ran)))
        XCTAssertEqual(try names(q.take(max: 512), ran), ["send"] + (1...6).map { "seen-\($0)" }, "the excess over the bound, after the send")
        XCTAssertEqual(q.count, JobQueue.backgroundBacklog)
        XCTAssertEqual(try names(q.take(max: 512), ran), ["seen-7"], "then one a batch again")
        XCTAssertEqual(q.count, JobQueue.backgroundBacklog - 1)
    }

    func testCloseDrainsBothLanesBeforeEnding() throws {
        let q = JobQueue()
        let ran = Locked<[String]>([])
        XCTAssertTrue(q.push(job("seen-1", ran), background: true))
        XCTAssertTrue(q.push(job("seen-2", ran), background: true))
        q.close()
        XCTAssertFalse(q.push(job("late", ran)), "a closed queue refuses new jobs")
        XCTAssertEqual(try names(q.take(max: 10), ran), ["seen-1"])
        XCTAssertEqual(try names(q.take(max: 10), ran), ["seen-2"])
        XCTAssertNil(q.take(max: 10), "closed and drained")
    }
}
