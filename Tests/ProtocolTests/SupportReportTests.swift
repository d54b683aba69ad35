import XCTest
@testable import Protocol

// The support report's figures from desk events: counts per service and agent, nearest-rank
// percentiles, and the queue's length over the range.
final class SupportReportTests: XCTestCase {
    let web = ConversationKey(service: "website", clientId: "ann")
    let mkt = ConversationKey(service: "marketing", clientId: "bob")

    func testPercentilesAreNearestRank() {
        let d = SupportReport.Durations([50, 10, 40, 20, 30, 60, 70, 80, 90, 100])
        XCTAssertEqual(d.count, 10)
        XCTAssertEqual(d.medianMs, 50)
        XCTAssertEqual(d.p90Ms, 90)
        XCTAssertEqual(SupportReport.Durations([7]).p90Ms, 7)
        XCTAssertNil(SupportReport.Durations([]).medianMs)
    }

    func testFiguresPerServiceAndAgent() {
        let events = SupportEvents(
            opened: [.init(conversation: web, agent: "wes", ts: 100, firstResponseMs: 60_000, responder: "wes"),
                     .init(conversation: mkt, agent: nil, ts: 200, firstResponseMs: 120_000, responder: "mia"),
                     .init(conversation: web, agent: "wes", ts: 300)],
            resolved: [.init(conversation: web, agent: "wes", ts: 400, resolutionMs: 300)])
        let r = SupportReport(events, from: 0, to: 1_000)
        XCTAssertEqual(r.total.opened, 3)
        XCTAssertEqual(r.total.resolved, 1)
        XCTAssertEqual(r.total.firstResponse.count, 2, "a cycle nobody answered yet has no first response")
        XCTAssertEqual(r.total.firstResponse.medianMs, 60_000)
        XCTAssertEqual(r.total.firstResponse.p90Ms, 120_000)
        XCTAssertEqual(r.byService["website"]?.opened, 2)
        XCTAssertEqual(r.byService["marketing"]?.firstResponse.medianMs, 120_000)
        XCTAssertEqual(r.byAgent["wes"]?.resolved, 1)
        XCTAssertEqual(r.byAgent["wes"]?.resolution.medianMs, 300)
        XCTAssertEqual(r.byAgent[SupportReport.noAgent]?.opened, 1, "opened with no agent")
        XCTAssertEqual(r.byAgent["mia"]?.firstResponse.count, 1, "a first response counts for who gave it")
        XCTAssertEqual(r.byAgent["mia"]?.opened, 0)
    }

    func testTheQueueSeriesStartsWhereTheRangeStartsAndShowsPeaks() {
        let events = SupportEvents(queuedAtStart: 2, queueChanges: [(10, 1), (11, 1), (12, -1), (500, -1), (999, -1), (1_000, 1)])
        let r = SupportReport(events, from: 0, to: 1_000)
        XCTAssertEqual(r.queue.count, SupportReport.points)
        XCTAssertEqual(r.queue.first?.length, 3, "2 at the start, +2 -1 in the first step")
        XCTAssertEqual(r.queue.first?.peak, 4)
        XCTAssertEqual(r.queue.last?.ts, 1_000)
        XCTAssertEqual(r.queue.last?.length, 2, "an event at the end of the range counts in the last step")
        XCTAssertTrue(r.queue.allSatisfy { $0.length >= 0 })
    }

    func testTheRangeIsCheckedAndDefaultsToTheLastWeek() {
        let now: Int64 = 1_800_000_000_000
        guard case .success(let week) = SupportReport.range(from: nil, to: nil, now: now) else { return XCTFail("a default range") }
        XCTAssertEqual(week.to, now + 1, "what happened this millisecond counts")
        XCTAssertEqual(week.to - week.from, SupportReport.defaultRangeMs)
        if case .success = SupportReport.range(from: 5, to: 5, now: now) { XCTFail("an empty range") }
        if case .success = SupportReport.range(from: 0, to: SupportReport.maxRangeMs + 1, now: now) { XCTFail("over a year") }
    }
}
