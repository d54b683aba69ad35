import Bridge
import Core
import Persistence
import Protocol

// The delivery state a session keeps per subscribed channel, handed to the router with the
// subscription so a publication reaches it without a lookup by channel name.
extension Session {
    /// Delivery state of one subscribed channel. A class so that the per-message path
    /// mutates it in place: one dictionary lookup, and `held` is never copied on append.
    final class Subscription {
        let channel: Channel
        /// The next seq this connection must receive (conversations).
        var next: Int64 = 1
        /// False while a fetch from the store is in flight: live pushes wait in `held`.
        var ready: Bool
        var held: [Publication] = []
        /// Counted in the channel's presence (participants of conversations only).
        var joined = false
        init(channel: Channel, ready: Bool = false) {
            self.channel = channel
            self.ready = ready
        }
    }
}
