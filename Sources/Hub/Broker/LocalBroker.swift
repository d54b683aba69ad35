// The single-node broker: every publication goes straight to this node's Router.
final class LocalBroker: Broker {
    private let router: Router

    init(router: Router) {
        self.router = router
    }

    func publish(_ p: Publication) { router.deliver(p) }
    func revoke(_ channel: String, user: String) { router.revoke(channel, user: user) }
    func hasInterest(_ channel: String) -> Bool { router.hasSubscribers(channel) }
}
