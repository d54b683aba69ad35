import XCTest
@testable import Hub

// Statuses heard for users who are nowhere here stay bounded.
final class PresenceStatusTests: XCTestCase {
    func testStatusesStayBoundedAndThoseOfPresentUsersSurviveThePrune() {
        let p = Presence()
        let agent = SessionUser(id: "a1", role: .websiteAgent, name: "A", services: nil)
        XCTAssertTrue(p.join("conv:website:c1", agent))
        p.setStatus("a1", "busy")
        for i in 0..<Presence.statusCap { p.setStatus("gone-\(i)", "away") }
        XCTAssertLessThanOrEqual(p.statusCount, Presence.statusCap, "expected the prune past the cap")
        XCTAssertEqual(p.online("conv:website:c1").first?.status, "busy", "a joined user's status is kept")
    }
}
