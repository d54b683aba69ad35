import Bridge
import CLinux
import Glibc
import Foundation
import Core
import Metrics
import Notifications
import Persistence
import Synchronization
import Protocol

// Builds the engine from a Configuration: the loops, both listeners bound on every loop,
// and the services behind them. Start, stop, and the ports actually bound.
final class HubServer {
    let configuration: Configuration
    let counters = EngineCounters()
    private(set) var loops: [EventLoop] = []
    let publicListener: Listener
    let bridgeListener: Listener
    let store: any Store & NotificationStore & WebhookStore
    let chat: ChatService
    let metrics = HubMetrics(bridgeRoutes: BridgeRoute.labels)
    let link: HubLink
    let notifier: Notifier
    let mailer: Mailer
    /// Posts the webhook outbox (nil: no --webhook).
    let webhooks: WebhookDeliverer?
    private var pruneTimer: DispatchSourceTimer?
    private let shutDown = Atomic<Bool>(false)
    /// The bus between nodes (nil: one node, the in-process broker).
    let redisBroker: RedisBroker?
    /// Presence, who is online, the connection limit and assignments across nodes (nil: one node).
    let cluster: ClusterState?

    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    init(configuration c: Configuration, limits base: EngineLimits = EngineLimits(),
         chatLimits: ChatLimits = ChatLimits()) throws(StartError) {
        configuration = c
        var limits = base
        limits.maxMessage = c.maxMessage
        limits.pingIntervalMs = Int64(c.pingIntervalSeconds) * 1000
        limits.maxConnections = c.maxConnections ?? HubServer.connectionCapacity()

        var tls: TLSContext?
        if let cert = c.tlsCert, let key = c.tlsKey {
            do { tls = try TLSContext(certificateFile: cert, keyFile: key) } catch { throw StartError(description: error.description) }
        }
        let handshake = HandshakeOptions(allowedOrigins: c.allowedOrigins, deflate: DeflatePolicy(enabled: c.deflate))
        var bridgeLimits = limits
        bridgeLimits.http.maxBodyBytes = c.bridgeMaxBody
        let opened: any Store & NotificationStore & WebhookStore
        do {
            for i in 0..<c.loops { loops.append(try EventLoop(index: i, counters: counters, limits: limits)) }
            try FileManager.default.createDirectory(atPath: c.dataDir, withIntermediateDirectories: true)
        } catch {
            throw StartError(description: "cannot open the data folder \(c.dataDir): \(error)")
        }
        do {
            switch c.storeLocation {
            case .sqlite(let path):
                opened = try SQLiteStore(path: path, now: wallMillis(), messageWording: MessageNotificationText.wording,
                                         searchIndex: c.searchIndex, durability: c.durability)
            case .postgres(let url):
                opened = try PostgresStore(url: url, writers: c.pgWriters, readers: c.pgReaders, now: wallMillis(),
                                           messageWording: MessageNotificationText.wording, searchIndex: c.searchIndex)
            }
        } catch {
            throw StartError(description: "cannot open the store \(c.storeLocation.description): \(error)")
        }
        let store = opened
        self.store = store
        if let endpoint = c.webhook, let secret = c.webhookSecret {
            store.webhookOutbox.enable() // before the first write: every event from now on is kept
            var hooks = WebhookDeliverer.Settings(endpoint: endpoint, secret: Array(secret.utf8))
            hooks.retry.baseDelayMs = c.webhookRetryBaseMs
            hooks.pollMs = c.webhookPollMs
            hooks.node = c.nodeID
            if endpoint.tls {
                do { hooks.tls = try WebhookTLS(caFile: c.webhookCA) } catch {
                    store.close()
                    throw StartError(description: "--webhook: \(error.description)")
                }
            }
            webhooks = WebhookDeliverer(store: store, metrics: metrics, settings: hooks)
        } else {
            webhooks = nil
        }
        let directory = Directory()
        let assignments = waitForStore { store.allAssignments(completion: $0) }
        guard case .success(let list) = assignments else { throw StartError(description: "cannot read assignments: \(assignments)") }
        directory.load(list)
        if c.dev { DemoSeed.seedIfNeeded(store, directory: directory) }
        var chatLimits = chatLimits
        if let n = c.opsPerSecond { chatLimits.opsPerSecond = n }
        if let n = c.opsBurst { chatLimits.opsBurst = n }
        if let n = c.maxConnectionsPerUser { chatLimits.maxConnectionsPerUser = n }
        if let n = c.maxUnauthenticated { chatLimits.maxUnauthenticated = n }
        chatLimits.editWindowMs = c.editWindowMs
        chatLimits.searchIndex = c.searchIndex
        chatLimits.attachments = c.attachmentPolicy
        let secret = Array((c.jwtSecret ?? "").utf8)
        guard !secret.isEmpty else {
            store.close()
            throw StartError(description: "no JWT secret (give --jwt-secret, or run in development mode)")
        }
        let router = Router(loops: loops)
        // One of several nodes: the bus between them and the state they share, or neither.
        var clusterBroker: RedisBroker?
        var state: ClusterState?
        if !c.brokers.isEmpty {
            var options = RedisBroker.Options()
            options.cluster = c.clusterName
            clusterBroker = RedisBroker(router: router, loops: loops, endpoints: c.brokers, nodeID: c.nodeID, store: store, options: options)
            do {
                state = try ClusterState(endpoints: c.brokers, clusterName: c.clusterName, nodeID: c.nodeID, loop: loops[0],
                                         directory: directory, loadAssignments: ClusterState.assignmentLoader(store))
            } catch {
                store.close()
                throw StartError(description: "cannot start the cluster state: \(error)")
            }
        }
        redisBroker = clusterBroker
        cluster = state
        chat = ChatService(store: store, directory: state?.assignments ?? directory, router: router, broker: clusterBroker,
                           verifier: JWTVerifier(secret: secret), limits: chatLimits, metrics: metrics, counters: counters,
                           presence: state?.presence ?? Presence(), online: state?.online ?? OnlineUsers(),
                           nodeID: state == nil ? nil : c.nodeID)
        state?.wire(to: chat)
        link = HubLink(chat: chat)
        let online = chat.online
        notifier = Notifier(store: store, live: link, onlineUsers: { online.snapshot() }, metrics: metrics,
                            emailDelayMs: c.emailFallbackDelayMs, node: c.nodeID)
        var mail = Mailer.Settings(smtp: c.smtpConfiguration)
        mail.retryBaseMs = c.smtpRetryMs
        mail.pollMs = c.mailPollMs
        mail.node = c.nodeID
        mailer = Mailer(store: store, live: link, metrics: metrics, settings: mail)
        var bridgeSettings = BridgeAPI.Settings(keys: c.bridgeKeys, jwtSecret: secret)
        bridgeSettings.smtpConfigured = mail.smtp != nil
        bridgeSettings.webhooksConfigured = webhooks != nil
        let api = BridgeAPI(store: store, live: link, notifier: notifier, metrics: metrics, settings: bridgeSettings)
        do {
            var service = PublicService(echoPath: c.echoPath, handshake: handshake, counters: counters, chat: chat,
                                        console: ConsoleRoutes(dev: c.dev, signer: JWTSigner(secret: secret),
                                                               attachmentOrigins: c.attachmentOrigins, editWindowMs: c.editWindowMs))
            if let stateCounters = state?.counters {
                service.clusterStateUp = { stateCounters.redisUp.load(ordering: .relaxed) }
            }
            publicListener = try Listener(name: "public", host: c.host, port: c.port, service: service,
                                          tls: tls, strictTransportSecurity: c.hstsMaxAge > 0 ? "max-age=\(c.hstsMaxAge)" : nil,
                                          limits: limits)
            bridgeListener = try Listener(name: "bridge", host: c.bridgeHost, port: c.bridgePort,
                                          service: BridgeService(api: api), tls: nil, limits: bridgeLimits)
            for loop in loops {
                try loop.add(publicListener)
                try loop.add(bridgeListener)
            }
        } catch {
            store.close()
            throw StartError(description: "\(error)")
        }
    }

    /// SIGHUP: loads the certificate and key again from their files and gives the new context
    /// to connections accepted from now on; open connections are not touched. On a bad file
    /// the old certificate stays in use and the reason is returned.
    @discardableResult
    func reloadTLS() -> String? {
        guard let cert = configuration.tlsCert, let key = configuration.tlsKey else { return "TLS is not configured" }
        do {
            let fresh = try TLSContext(certificateFile: cert, keyFile: key)
            publicListener.replaceTLS(fresh)
            Log.info("tls_reloaded", ["cert": cert])
            return nil
        } catch {
            Log.error("tls_reload_failed", ["reason": error.description, "action": "keeping the previous certificate"])
            return error.description
        }
    }

    func start() {
        redisBroker?.start() // queued on the loops: connected once they run, before the first client
        cluster?.start()
        for loop in loops { loop.start() }
        mailer.start()
        webhooks?.start()
        notifier.resumeUnfinished()
        // On a shared database a fan-out whose node died is taken over by another.
        if case .postgres = configuration.storeLocation { notifier.keepResuming(everyMs: 30_000) }
        // Idempotency-Key answers are kept two days (the contract promises at least one).
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + 60, repeating: 600)
        let store = self.store
        timer.setEventHandler { store.pruneIdempotency(olderThan: wallMillis() - 2 * 86_400_000) }
        timer.resume()
        pruneTimer = timer
    }

    /// Closes every WebSocket with 1001, lets output drain, and returns when every loop has
    /// stopped (or the deadline forced them).
    func shutdown(deadlineMs: Int64 = 5_000) {
        // Once: a second call (a test's tear-down after the test stopped it) returns at once
        // instead of waiting for loops that finished already.
        guard !shutDown.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // This node's members and counts leave Redis now (their leaves published), instead of
        // waiting for the janitor's bound.
        cluster?.stopAndWait()
        // Before the loops begin to shut down: a shard's connections are closed by a job on its
        // loop, and a loop that is shutting down ends with its last WebSocket, whatever Redis
        // connections it holds, so a loop with none would end before the job ran and the broker
        // would wait out its deadline. What other nodes miss of the last acks they read from the
        // store.
        redisBroker?.stop()
        for loop in loops {
            loop.execute { $0.beginShutdown(deadlineMs: deadlineMs) }
        }
        for loop in loops { loop.waitUntilFinished() }
        pruneTimer?.cancel()
        mailer.stop()
        webhooks?.stop()
        chat.pushes.flush()
        chat.seen.flush()
        store.close() // finishes queued writes and checkpoints the WAL
    }

    /// How many connections the open-file limit leaves room for (after raising the soft limit
    /// to the hard one), keeping some descriptors for the database, logs and listeners.
    static func connectionCapacity() -> Int {
        var lim = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        return max(16, Int(lim.rlim_cur) - 64)
    }
}
