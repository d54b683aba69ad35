import CLinux
import Foundation

/// Starts a thread of the hub's own (a loop, a database connection's, the mailer's...) under
/// `name`, which the kernel gets too (its first 15 bytes): `top -H`, `perf` and
/// /proc/PID/task/*/comm then say which thread does what. Foundation keeps a thread's name to
/// itself on Linux.
public func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        montrose_name_thread(name)
        body()
    }
    thread.name = name
    thread.start()
}
