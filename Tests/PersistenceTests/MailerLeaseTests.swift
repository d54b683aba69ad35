import XCTest
@testable import Notifications

// The mailer stops working a claimed batch while one more send could still end inside its lease.
final class MailerLeaseTests: XCTestCase {
    func testTheLastSendStartsOneSlowSendBeforeTheLeaseEnds() {
        XCTAssertEqual(Mailer.lastSendStart(claimedAt: 1_000, leaseMs: 900_000, smtpTimeoutMs: 10_000),
                       1_000 + 900_000 - Mailer.smtpStepsPerSend * 10_000)
    }

    func testALeaseShorterThanOneSendStillLetsTheFirstMailGo() {
        XCTAssertEqual(Mailer.lastSendStart(claimedAt: 1_000, leaseMs: 5_000, smtpTimeoutMs: 10_000), 1_000)
    }
}
