import Core
import Persistence
import Protocol

// The delivery state a session keeps per subscribed channel, handed to the router with the
// subscription so a publication reaches it without a lookup by channel name.
extension Session {
    /// One subscribed channel. A class so that the per-message path mutates its delivery
    /// state in place: one lookup (the router hands it over), and `held` is never copied on
    /// append.
    final class Subscription {
        let channel: Channel
        /// Counted in the channel's presence (participants of conversations only).
        var joined = false
        /// Its place in the loop registry's list of the channel's subscribers (-1: not
        /// listed); kept by `SubscriberList`. Declared before `delivery`: it fits the padding
        /// after `channel`, so the object stays in the same allocation size.
        var routerSlot: Int32 = -1
        var delivery: SubscriptionDelivery
        init(channel: Channel, ready: Bool = false) {
            self.channel = channel
            delivery = SubscriptionDelivery(ready: ready)
        }
    }
}
