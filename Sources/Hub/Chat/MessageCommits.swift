import Persistence

extension ChatService {
    /// Everything that follows a new message's commit, whoever sent it (a WebSocket `send` or
    /// the bridge): the `message` push through the broker, the counters, the notifications the
    /// message created for participants not watching, and the sender's read mark. Runs on the
    /// store's completion thread, in commit order, after the sender's reply was queued; a
    /// replayed duplicate changes nothing.
    /// `senderObserves`: the sender reads as an observer (an unassigned admin), so moving their
    /// read mark is not announced to the conversation.
    func messageCommitted(_ a: AppendResult, senderObserves: Bool) {
        guard !a.duplicate else { return }
        broker.publish(.message(a.message))
        metrics.messagesStored.add(1, ordering: .relaxed)
        metrics.notificationsStored.add(a.notifications.count, ordering: .relaxed)
        for n in a.notifications { notify(n) }
        if let r = a.senderRead {
            readMarkMoved(a.message.conversation, user: a.message.senderId, r, announce: !senderObserves)
        }
    }
}
