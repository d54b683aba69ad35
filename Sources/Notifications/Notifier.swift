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
    /// This node's id: the unfinished fan-outs it resumes are leased to it (several nodes on
    /// one database resume each one once). Unless given, one of this process alone: two nodes
    /// must never share one, or each would take the other's fan-outs as its own.
    let node: String
    /// The fan-outs this process is stepping now: a second `run` of one of them is a no-op.
    private let running = Locked<Set<Int64>>([])
    private let queue = DispatchQueue(label: "montrose.fanout")

    public init(store: NotificationStore, live: LiveNotifications, onlineUsers: @escaping @Sendable () -> Set<String>,
                metrics: HubMetrics, emailDelayMs: Int64, chunkSize: Int = 250,
                node: String = Notifier.processNodeID()) {
        self.store = store
        self.live = live
        self.onlineUsers = onlineUsers
        self.metrics = metrics
        self.emailDelayMs = emailDelayMs
        self.chunkSize = chunkSize
        self.node = node
    }

    /// A node id of this process alone (random), the default of Notifier's and Mailer's.
    public static func processNodeID() -> String {
        "node-" + String(UInt64.random(in: .min ... .max), radix: 16)
    }

    /// Pushes each stored notification to its user's live connections.
    public func notify(_ list: [DeliveredNotification]) {
        for n in list { live.notify(n) }
    }

    /// Stores the fan-out's chunks one after another, pushing each to whoever is online. Who is
    /// online is taken as each chunk is submitted: the transaction never calls into the hub.
    /// A fan-out this process is running already is left to the run in progress.
    public func run(fanout id: Int64) {
        guard running.withLock({ $0.insert(id).inserted }) else { return }
        step(fanout: id, startedAt: Date(), stored: 0, longestChunkMicros: 0, retryMs: 1_000)
    }

    /// `run`, logging a resume when it starts one (not when a run is in progress already).
    private func resume(fanout id: Int64) {
        guard running.withLock({ $0.insert(id).inserted }) else { return }
        Log.info("fanout_resumed", ["fanout": "\(id)"])
        step(fanout: id, startedAt: Date(), stored: 0, longestChunkMicros: 0, retryMs: 1_000)
    }

    private func step(fanout id: Int64, startedAt: Date, stored: Int, longestChunkMicros: Int64, retryMs: Int) {
        store.fanoutStep(id, limit: chunkSize, now: wallMillis(), emailDelayMs: emailDelayMs,
                         online: onlineUsers()) { [self] result in
            switch result {
            case .failure(.closing):
                // Shutting down: left unfinished in the store, the next start resumes it.
                running.withLock { _ = $0.remove(id) }
                Log.info("fanout_paused", ["fanout": "\(id)", "stored": "\(stored)"])
            case .failure(let e):
                // A storage hiccup: try the same chunk again, backing off (it is still unstored).
                Log.error("fanout_step_failed", ["fanout": "\(id)", "reason": "\(e)", "retry_ms": "\(retryMs)"])
                queue.asyncAfter(deadline: .now() + .milliseconds(retryMs)) { [self] in
                    step(fanout: id, startedAt: startedAt, stored: stored, longestChunkMicros: longestChunkMicros,
                         retryMs: min(retryMs * 2, 60_000))
                }
            case .success(let step):
                metrics.notificationsStored.add(step.stored, ordering: .relaxed)
                // Pushed here, in commit order, so no older `unread` can overtake a newer one.
                notify(step.delivered)
                let total = stored + step.stored
                let longest = max(longestChunkMicros, step.busyMicros)
                if !step.finished {
                    self.step(fanout: id, startedAt: startedAt, stored: total, longestChunkMicros: longest, retryMs: 1_000)
                } else {
                    running.withLock { _ = $0.remove(id) }
                    let ms = Int(Date().timeIntervalSince(startedAt) * 1000)
                    Log.info("fanout_done", ["fanout": "\(id)", "stored": "\(total)", "ms": "\(ms)",
                                              "longest_chunk_ms": String(format: "%.2f", Double(longest) / 1000)])
                }
            }
        }
    }

    /// With several nodes on one database: `resumeUnfinished` again every `periodMs`, so a
    /// fan-out whose node died is taken over within its lease and one period. Stops when the
    /// Notifier is released.
    public func keepResuming(everyMs periodMs: Int) {
        queue.asyncAfter(deadline: .now() + .milliseconds(periodMs)) { [weak self] in
            guard let self else { return }
            resumeUnfinished()
            keepResuming(everyMs: periodMs)
        }
    }

    /// Resumes unfinished fan-outs that are this node's to run: those a previous run left, and
    /// with several nodes those of a node that stopped stepping them (its lease lapsed). Called
    /// at start, and periodically when other nodes share the database.
    public func resumeUnfinished() {
        store.claimUnfinishedFanouts(node: node, now: wallMillis()) { [self] result in
            guard case .success(let ids) = result else { return }
            for id in ids { resume(fanout: id) }
        }
    }
}

