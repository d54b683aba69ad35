import CLinux
import Glibc

// The generator's event loop primitive: one epoll instance, level-triggered, a 64-bit token
// per descriptor (the connection's index). Everything runs on the main thread.
final class Poller {
    let epfd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private let capacity = 1024

    init() {
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epfd >= 0, "epoll_create1 failed: errno \(montrose_errno())")
        events = .allocate(capacity: capacity)
    }

    deinit {
        events.deallocate()
        close(epfd)
    }

    func add(_ fd: Int32, token: UInt64, events mask: UInt32) {
        var ev = epoll_event()
        ev.events = mask
        ev.data.u64 = token
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
    }

    func modify(_ fd: Int32, token: UInt64, events mask: UInt32) {
        var ev = epoll_event()
        ev.events = mask
        ev.data.u64 = token
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    func remove(_ fd: Int32) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
    }

    /// Waits up to `timeoutMs` and calls `body(token, events)` for each ready descriptor.
    func wait(timeoutMs: Int32, _ body: (UInt64, UInt32) -> Void) {
        let n = epoll_wait(epfd, events, Int32(capacity), timeoutMs)
        guard n > 0 else { return }
        for i in 0..<Int(n) {
            let ev = events[i]
            body(ev.data.u64, ev.events)
        }
    }

    static let readable = EPOLLIN.rawValue
    static let writable = EPOLLOUT.rawValue
    static let failed = EPOLLERR.rawValue | EPOLLHUP.rawValue
}
