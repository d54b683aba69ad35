import Foundation
import Core
import Metrics
import Persistence
import Protocol

// The Notifications module: what happens to a notification once it is stored — live pushes,
// role and everyone fan-outs (Notifier), the mail outbox and its SMTP client (Mail/), push
// receipts and last-seen times stored in batches (BatchRecorder), and the words of a message
// notification (MessageNotificationText). SQL stays in Persistence; the running hub is reached
// only through LiveNotifications.
//
// Turns stored notifications into live pushes, and drives role and everyone fan-outs: the
// recipients are stored in chunks of `chunkSize` users (250), one writer transaction each, so a
// fan-out of 100,000 users never holds the writer (or any loop) for more than a chunk's time,
// and a restart resumes an unfinished fan-out from its cursor.
public final class Notifier: Sendable {
    let store: NotificationStore
    let live: LiveNotifications
    /// The users connected now, as a value (copy-on-write: cheap to take, and a connect or
    /// disconnect copies it only while a step still holds it).
    let onlineUsers: @Sendable () -> Set<String>
    let metrics: HubMetrics
    public let emailDelayMs: Int64
    let chunkSize: Int
    private let queue = DispatchQueue(label: "montrose.fanout")

    public init(store: NotificationStore, live: LiveNotifications, onlineUsers: @escaping @Sendable () -> Set<String>,
                metrics: HubMetrics, emailDelayMs: Int64, chunkSize: Int = 250) {
        self.store = store
        self.live = live
        self.onlineUsers = onlineUsers
        self.metrics = metrics
        self.emailDelayMs = emailDelayMs
        self.chunkSize = chunkSize
    }

    /// Pushes each stored notification to its user's live connections.
    public func notify(_ list: [DeliveredNotification]) {
        for n in list { live.notify(n) }
    }

    /// Stores the fan-out's chunks one after another, pushing each to whoever is online. Who is
    /// online is taken as each chunk is submitted: the transaction never calls into the hub.
    public func run(fanout id: Int64, startedAt: Date = Date(), stored: Int = 0, longestChunkMicros: Int64 = 0,
                    retryMs: Int = 1_000) {
        store.fanoutStep(id, limit: chunkSize, now: wallMillis(), emailDelayMs: emailDelayMs,
                         online: onlineUsers()) { [self] result in
            switch result {
            case .failure(.closing):
                // Shutting down: left unfinished in the store, the next start resumes it.
                Log.info("fanout_paused", ["fanout": "\(id)", "stored": "\(stored)"])
            case .failure(let e):
                // A storage hiccup: try the same chunk again, backing off (it is still unstored).
                Log.error("fanout_step_failed", ["fanout": "\(id)", "reason": "\(e)", "retry_ms": "\(retryMs)"])
                queue.asyncAfter(deadline: .now() + .milliseconds(retryMs)) { [self] in
                    run(fanout: id, startedAt: startedAt, stored: stored, longestChunkMicros: longestChunkMicros,
                        retryMs: min(retryMs * 2, 60_000))
                }
            case .success(let step):
                metrics.notificationsStored.add(step.stored, ordering: .relaxed)
                // Pushed here, in commit order, so no older `unread` can overtake a newer one.
                notify(step.delivered)
                let total = stored + step.stored
                let longest = max(longestChunkMicros, step.busyMicros)
                if !step.finished {
                    run(fanout: id, startedAt: startedAt, stored: total, longestChunkMicros: longest)
                } else {
                    let ms = Int(Date().timeIntervalSince(startedAt) * 1000)
                    Log.info("fanout_done", ["fanout": "\(id)", "stored": "\(total)", "ms": "\(ms)",
                                              "longest_chunk_ms": String(format: "%.2f", Double(longest) / 1000)])
                }
            }
        }
    }

    /// Resumes fan-outs a previous run left unfinished.
    public func resumeUnfinished() {
        store.unfinishedFanouts { [self] result in
            guard case .success(let ids) = result else { return }
            for id in ids {
                Log.info("fanout_resumed", ["fanout": "\(id)"])
                run(fanout: id)
            }
        }
    }
}

