import XCTest
@testable import Protocol

// A status rebuilt from its code (as a stored idempotent answer is) keeps its reason phrase.
final class HTTPStatusTests: XCTestCase {
    func testAStatusFromItsCodeHasItsStandardReason() {
        XCTAssertEqual(HTTPStatus.code(201), .created)
        XCTAssertEqual(HTTPStatus.code(422).reason, "Unprocessable Content")
        XCTAssertEqual(HTTPStatus.code(409).reason, "Conflict")
        XCTAssertEqual(HTTPStatus.code(299).reason, "Status", "an unnamed code is not called OK")
    }
}
