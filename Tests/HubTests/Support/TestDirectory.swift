import Foundation
import XCTest

/// Scratch directories for one test run (data folders, certificates), all under one root that
/// is removed when the run ends, so repeated runs do not fill the temporary folder with SQLite
/// files. A directory a test needs gone sooner (a 2 GB database, say) it removes itself.
enum TestDirectory {
    /// A fresh path under the run's root, not yet created.
    static func make(_ prefix: String) -> String {
        root.path + "/\(prefix)-\(UUID().uuidString)"
    }

    private static let root = RunRoot()
}

/// The run's root: `montrose-tests-<pid>` in the temporary folder, removed after the last test.
private final class RunRoot: NSObject, XCTestObservation, @unchecked Sendable {
    let path = NSTemporaryDirectory() + "montrose-tests-\(getpid())"

    override init() {
        super.init()
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTestObservationCenter.shared.addTestObserver(self)
    }

    func testBundleDidFinish(_ testBundle: Bundle) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
