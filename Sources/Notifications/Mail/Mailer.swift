import Foundation
import Core
import Metrics
import Persistence
import Protocol
import Synchronization

// Delivers the outbox. Its own thread (SMTP is blocking I/O and must never run on a loop):
// every poll it takes the mails that are due, decides fallback mails (sent only when the user
// neither read the notification nor had a live connection since it was created), sends through
// SMTP, and records each outcome. Retries back off exponentially and live in the database, so
// they survive a restart; a 5xx is permanent and never retried.
public final class Mailer: Sendable {
    public struct Settings: Sendable {
        public var smtp: SMTPConfiguration?
        public var pollMs: Int = 1_000
        public var retryBaseMs: Int64 = 30_000
        public var retryMaxMs: Int64 = 3_600_000
        public var maxAttempts = 10
        public var batch = 50
        /// This node's id: the mails it takes are leased to it, so several nodes on one
        /// database send each mail once (one mailer per node id). Unless set, one of this
        /// process alone: two nodes must never share one, or each would take the other's.
        public var node = Notifier.processNodeID()
        /// How long a taken mail stays this node's: longer than a batch of sends can take at
        /// the SMTP timeout. A node that stops mid-batch leaves the rest to whoever claims
        /// after the lease (or to itself at once, restarted with the same id).
        public var leaseMs: Int64 = 900_000
        public init(smtp: SMTPConfiguration?) { self.smtp = smtp }
    }

    private let store: NotificationStore
    private let live: LiveNotifications
    private let metrics: HubMetrics
    private let settings: Settings
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    public init(store: NotificationStore, live: LiveNotifications, metrics: HubMetrics, settings: Settings) {
        self.store = store
        self.live = live
        self.metrics = metrics
        self.settings = settings
    }

    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        if let smtp = settings.smtp {
            Log.info("mail_ready", ["smtp": "\(smtp.host):\(smtp.port)", "from": smtp.from])
        } else {
            Log.info("mail_disabled", ["reason": "no --smtp configured; mails stay in the outbox"])
        }
        startThread(named: "mailer") { [self] in
            run()
            finished.signal()
        }
    }

    /// Stops after the mail in hand (if any) is recorded.
    public func stop() {
        guard started.load(ordering: .relaxed) else { return }
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        finished.wait()
    }

    private func run() {
        var lastCount: Int64 = 0
        var reportedWaiting = -1
        while !stopping.load(ordering: .relaxed) {
            let now = wallMillis()
            if now - lastCount >= 2_000 {
                lastCount = now
                if case .success(let pending) = waitForStore({ self.store.pendingMailCount(completion: $0) }) {
                    metrics.outboxPending.store(pending, ordering: .relaxed)
                    if settings.smtp == nil && pending != reportedWaiting && pending > 0 {
                        Log.info("mail_waiting", ["pending": "\(pending)", "reason": "no --smtp configured"])
                        reportedWaiting = pending
                    }
                }
            }
            if let smtp = settings.smtp { deliverDue(smtp) }
            _ = wake.wait(timeout: .now() + .milliseconds(settings.pollMs))
        }
    }

    /// SMTP steps of one send, each up to the SMTP timeout: connect, greeting, EHLO, HELO,
    /// MAIL, RCPT, DATA, the message, QUIT.
    static let smtpStepsPerSend: Int64 = 9

    /// The last moment a send of a batch claimed at `claimedAt` may start: one more send after it
    /// could outlast the lease, and another node could claim and send the mail again. The first
    /// mail of a batch is always sent (a lease shorter than one send still makes progress).
    static func lastSendStart(claimedAt: Int64, leaseMs: Int64, smtpTimeoutMs: Int) -> Int64 {
        max(claimedAt, claimedAt + leaseMs - smtpStepsPerSend * Int64(max(1, smtpTimeoutMs)))
    }

    private func deliverDue(_ smtp: SMTPConfiguration) {
        let claimedAt = wallMillis()
        guard case .success(let due) = waitForStore({
            self.store.claimDueMail(node: self.settings.node, now: claimedAt, leaseMs: self.settings.leaseMs,
                                    limit: self.settings.batch, completion: $0)
        }) else { return }
        let lastStart = Self.lastSendStart(claimedAt: claimedAt, leaseMs: settings.leaseMs, smtpTimeoutMs: smtp.timeoutMs)
        for (n, mail) in due.enumerated() {
            if stopping.load(ordering: .relaxed) { return }
            // The rest stays leased to this node: its next claim returns it with a new lease.
            if n > 0 && wallMillis() > lastStart {
                Log.info("mail_lease_ending", ["left": "\(due.count - n)"])
                return
            }
            let result = decide(mail, smtp)
            _ = waitForStore { self.store.finishMail(mail.id, result, node: self.settings.node, now: wallMillis(), completion: $0) }
            switch result {
            case .sent:
                metrics.mailsSent.add(1, ordering: .relaxed)
                Log.info("mail_sent", ["outbox": "\(mail.id)", "user": mail.userId, "attempt": "\(mail.attempts + 1)"])
            case .failed(let why):
                metrics.mailsFailed.add(1, ordering: .relaxed)
                Log.error("mail_failed", ["outbox": "\(mail.id)", "user": mail.userId, "reason": why])
            case .retry(let why, let at):
                Log.info("mail_retry", ["outbox": "\(mail.id)", "user": mail.userId, "reason": why, "in_ms": "\(at - wallMillis())"])
            case .skipped(let why):
                Log.info("mail_skipped", ["outbox": "\(mail.id)", "user": mail.userId, "reason": why])
            }
        }
    }

    /// What to do with one due mail.
    func decide(_ mail: OutboxMail, _ smtp: SMTPConfiguration) -> OutboxResult {
        guard let address = mail.address, !address.isEmpty else { return .skipped("the user has no email address") }
        if mail.bouncedAddress == address { return .skipped("the address failed permanently before; waiting for a new one") }
        if mail.mode == .fallback {
            if mail.read { return .skipped("read before the fallback delay ended") }
            if live.isOnline(mail.userId) || (mail.lastSeen ?? Int64.min) >= mail.notificationTs {
                return .skipped("the user had a live connection during the delay")
            }
        }
        // A title may hold line breaks; a mail subject may not.
        let subject = mail.title.split(whereSeparator: { $0 == "\r" || $0 == "\n" }).joined(separator: " ")
        let message = MailMessage(to: address, subject: subject,
                                  body: mail.body.isEmpty ? mail.title : mail.body + "\n\n— Montrose")
        switch SMTPClient.send(message, with: smtp) {
        case .sent:
            return .sent
        case .permanent(let why):
            return .failed(why)
        case .transient(let why):
            let attempt = mail.attempts + 1
            if attempt >= settings.maxAttempts { return .failed("gave up after \(attempt) attempts: \(why)") }
            let backoff = min(settings.retryMaxMs, settings.retryBaseMs << Int64(min(attempt - 1, 20)))
            return .retry(error: why, retryAt: wallMillis() + backoff)
        }
    }
}
