// A session's subscriptions by channel name. Nearly every connection holds one or two (its own
// user channel, and the conversation it is on), so two entries are kept inline and such a
// session allocates no table; from the third on they go to a dictionary. Looked up by ops and
// store completions, never per delivery (the router hands a delivery its subscription).
struct SubscriptionTable: Sequence {
    typealias Entry = (name: String, subscription: Session.Subscription)
    private var first: Entry?
    private var second: Entry?
    private var more: [String: Session.Subscription] = [:]

    var count: Int { (first == nil ? 0 : 1) + (second == nil ? 0 : 1) + more.count }

    /// The channel names, in no particular order.
    var keys: [String] { map(\.name) }

    subscript(name: String) -> Session.Subscription? {
        get {
            if let first, first.name == name { return first.subscription }
            if let second, second.name == name { return second.subscription }
            return more.isEmpty ? nil : more[name]
        }
        set {
            guard let newValue else {
                removeValue(forKey: name)
                return
            }
            // A name is in one place only: replaced where it is, else put in the first free one.
            if first?.name == name {
                first = (name, newValue)
            } else if second?.name == name {
                second = (name, newValue)
            } else if more[name] != nil {
                more[name] = newValue
            } else if first == nil {
                first = (name, newValue)
            } else if second == nil {
                second = (name, newValue)
            } else {
                more[name] = newValue
            }
        }
    }

    @discardableResult
    mutating func removeValue(forKey name: String) -> Session.Subscription? {
        if let e = first, e.name == name {
            first = nil
            return e.subscription
        }
        if let e = second, e.name == name {
            second = nil
            return e.subscription
        }
        return more.isEmpty ? nil : more.removeValue(forKey: name)
    }

    func makeIterator() -> IndexingIterator<[Entry]> {
        var all: [Entry] = []
        all.reserveCapacity(count)
        if let first { all.append(first) }
        if let second { all.append(second) }
        for (name, subscription) in more { all.append((name, subscription)) }
        return all.makeIterator()
    }
}

extension Session {
    /// Its place in the loop registry's list for `channel` (-1: not listed): kept in the
    /// subscription, or for a broadcast channel (no subscription) in `broadcastSlot0` and `broadcastSlot1`.
    func routerSlot(for channel: String, _ subscription: Subscription?) -> Int {
        if let subscription { return Int(subscription.routerSlot) }
        if broadcastChannels.count > 0 && broadcastChannels[0] == channel { return Int(broadcastSlot0) }
        if broadcastChannels.count > 1 && broadcastChannels[1] == channel { return Int(broadcastSlot1) }
        return -1
    }

    func setRouterSlot(_ slot: Int, for channel: String, _ subscription: Subscription?) {
        let value = Int32(truncatingIfNeeded: slot)
        if let subscription {
            subscription.routerSlot = value
        } else if broadcastChannels.count > 0 && broadcastChannels[0] == channel {
            broadcastSlot0 = value
        } else if broadcastChannels.count > 1 && broadcastChannels[1] == channel {
            broadcastSlot1 = value
        }
    }
}
