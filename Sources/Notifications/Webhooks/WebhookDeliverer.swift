import Foundation
import Core
import Metrics
import Persistence
import Protocol
import Synchronization

// Delivers the webhook outbox. Its own thread (the POST is blocking I/O and must never run on
// a loop or hold a store writer): every poll it claims the due events (the head of each
// conversation's queue, under a lease), signs and POSTs each, and records each outcome. A 2xx
// is delivered; anything else is retried with backoff (WebhookRetryPolicy) until 24 hours after
// the event was written, then given up. Retries live in the database, so they survive a restart.
public final class WebhookDeliverer: Sendable {
    public struct Settings: Sendable {
        public var endpoint: WebhookEndpoint
        /// Never logged, never in an error.
        public var secret: [UInt8]
        /// How long the thread sleeps when nothing was due.
        public var pollMs = 1_000
        /// Events claimed per poll (at most one per conversation: the head of its queue).
        public var batch = 20
        /// How long a claimed event stays this node's: longer than a batch at the timeouts.
        public var leaseMs: Int64 = 120_000
        public var retry = WebhookRetryPolicy()
        public var timeouts = WebhookHTTPClient.Timeouts()
        /// This node's id (see Mailer.Settings.node): one deliverer per id.
        public var node = Notifier.processNodeID()
        /// The client TLS context for an https:// endpoint (made at start: see WebhookTLS).
        public var tls: WebhookTLS?
        public init(endpoint: WebhookEndpoint, secret: [UInt8]) {
            self.endpoint = endpoint
            self.secret = secret
        }
    }

    private let store: WebhookStore
    private let metrics: HubMetrics
    private let settings: Settings
    private let stopping = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    public init(store: WebhookStore, metrics: HubMetrics, settings: Settings) {
        self.store = store
        self.metrics = metrics
        self.settings = settings
    }

    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        metrics.webhooksConfigured.store(true, ordering: .relaxed)
        Log.info("webhooks_ready", ["to": settings.endpoint.logName])
        startThread(named: "webhooks") { [self] in
            run()
            finished.signal()
        }
    }

    /// Stops promptly: an attempt in hand is cut within WebhookHTTPClient.cancelCheckMs and
    /// recorded as failed (so retried by the next start).
    public func stop() {
        guard started.load(ordering: .relaxed) else { return }
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        finished.wait()
    }

    private func run() {
        var lastCount: Int64 = 0
        var lastPrune: Int64 = 0
        while !stopping.load(ordering: .relaxed) {
            let now = wallMillis()
            if now - lastCount >= 2_000 {
                lastCount = now
                if case .success(let pending) = waitForStore({ self.store.pendingWebhookCount(completion: $0) }) {
                    metrics.webhookOutboxPending.store(pending, ordering: .relaxed)
                }
            }
            if now - lastPrune >= 3_600_000 {
                lastPrune = now
                store.pruneWebhooks(finishedBefore: now - WebhookOutbox.keepFinishedMs)
            }
            // A batch that sent something may have freed the next event of a conversation: look
            // again at once instead of after a poll.
            if deliverDue() > 0 { continue }
            _ = wake.wait(timeout: .now() + .milliseconds(settings.pollMs))
        }
    }

    /// The longest one attempt can take at the timeouts.
    var attemptBoundMs: Int64 {
        Int64(settings.timeouts.connectMs + settings.timeouts.writeMs + settings.timeouts.responseMs)
    }

    /// Sends what is due; returns how many were sent (whatever their outcome).
    private func deliverDue() -> Int {
        let claimedAt = wallMillis()
        guard case .success(let due) = waitForStore({
            self.store.claimDueWebhooks(node: self.settings.node, now: claimedAt, leaseMs: self.settings.leaseMs,
                                        limit: self.settings.batch, completion: $0)
        }) else { return 0 }
        // One more attempt after this must still end inside the lease, or another node could
        // claim and send the event too. The first always goes (a short lease still progresses).
        let lastStart = max(claimedAt, claimedAt + settings.leaseMs - attemptBoundMs)
        var sent = 0
        for (n, event) in due.enumerated() {
            if stopping.load(ordering: .relaxed) { break }
            if n > 0 && wallMillis() > lastStart {
                Log.info("webhooks_lease_ending", ["left": "\(due.count - n)"])
                break
            }
            deliver(event)
            sent += 1
        }
        return sent
    }

    private func deliver(_ event: WebhookEvent) {
        let body = Array(event.body.utf8)
        let started = monotonicMicros()
        let timestamp = wallMillis() / 1000
        let outcome: WebhookOutcome
        let attempt = event.attempts + 1
        if let signature = WebhookSignature.header(secret: settings.secret, timestamp: timestamp, body: body) {
            switch WebhookHTTPClient.post(settings.endpoint, body: body, signature: signature, timeouts: settings.timeouts,
                                          tls: settings.tls, cancelled: { self.stopping.load(ordering: .relaxed) }) {
            case .success(let status) where (200...299).contains(status):
                outcome = .delivered(status: status)
            case .success(let status):
                outcome = settings.retry.afterFailure(attempt: attempt, createdAt: event.createdAt, now: wallMillis(),
                                                      status: status, error: nil)
            case .failure(let why):
                outcome = settings.retry.afterFailure(attempt: attempt, createdAt: event.createdAt, now: wallMillis(),
                                                      status: nil, error: why.description)
            }
        } else {
            outcome = settings.retry.afterFailure(attempt: attempt, createdAt: event.createdAt, now: wallMillis(),
                                                  status: nil, error: "could not sign (OpenSSL HMAC failed)")
        }
        let durationMs = (monotonicMicros() - started) / 1_000
        _ = waitForStore {
            self.store.finishWebhook(event, outcome, node: self.settings.node, now: wallMillis(), durationMs: durationMs, completion: $0)
        }
        switch outcome {
        case .delivered(let status):
            metrics.webhooksDelivered.add(1, ordering: .relaxed)
            Log.debug("webhook_delivered", ["event": event.eventId, "type": event.type, "attempt": "\(attempt)",
                                             "status": "\(status)", "ms": "\(durationMs)"])
        case .retry(let status, let error, let at):
            metrics.webhookAttemptsFailed.add(1, ordering: .relaxed)
            Log.info("webhook_retry", ["event": event.eventId, "type": event.type, "attempt": "\(attempt)",
                                       "reason": error ?? "HTTP \(status ?? 0)", "in_ms": "\(at - wallMillis())"])
        case .givenUp(let status, let error):
            metrics.webhookAttemptsFailed.add(1, ordering: .relaxed)
            metrics.webhooksGivenUp.add(1, ordering: .relaxed)
            Log.error("webhook_given_up", ["event": event.eventId, "type": event.type, "attempt": "\(attempt)",
                                           "reason": error ?? "HTTP \(status ?? 0)"])
        }
    }
}
