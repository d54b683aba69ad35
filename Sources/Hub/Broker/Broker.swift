// The seam between "a push is ready" (a message committed, a notification stored, a presence
// change) and "deliver it to the subscribers on this node". Every publish goes through a
// Broker; only the Broker talks to the Router. With one node that is a function call
// (`LocalBroker`); with several, the broker also carries the publication to the nodes that
// have said they are interested in its channel.
//
// What a Broker promises:
// - publications from one thread reach each local subscriber in the order published;
// - it may lose a publication between nodes, never the store's data: subscribers detect the
//   gap by seq and recover from the store;
// - `hasInterest` may say true when unsure; it says false only when no node has a subscriber.
protocol Broker: Sendable {
    /// Pushes `p` to every subscriber of its channel, on this node and any other.
    func publish(_ p: Publication)
    /// Ends `user`'s subscriptions to `channel` everywhere (an assignment was taken away).
    func revoke(_ channel: String, user: String)
    /// Whether a publish on `channel` could reach anyone (lets callers skip encoding a push).
    func hasInterest(_ channel: String) -> Bool
}
