import Bridge
import Dispatch
import Persistence
import Synchronization

// Remembers which notifications were written to a live socket, for receipts. Loops only
// append to a list; the list is stored a moment later in chunks, each one writer job, so a
// broadcast to 19,000 connections costs the writer a few short transactions, not 19,000.
final class PushRecorder: Sendable {
    private let store: NotificationStore
    private let pending = Locked<[(notification: Int64, user: String)]>([])
    static let chunk = 500
    static let delayMs = 20

    init(store: NotificationStore) { self.store = store }

    func record(_ notification: Int64, user: String) {
        let first = pending.withLock { list -> Bool in
            list.append((notification, user))
            return list.count == 1
        }
        if first {
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Self.delayMs)) { [self] in flush() }
        }
    }

    func flush() {
        let list = pending.withLock { l -> [(notification: Int64, user: String)] in
            defer { l = [] }
            return l
        }
        let now = wallMillis()
        var start = 0
        while start < list.count {
            let end = min(list.count, start + Self.chunk)
            store.recordPushes(Array(list[start..<end]), now: now)
            start = end
        }
    }
}
