import Persistence
import Protocol

// Every push the hub sends (docs/protocol.md "Pushes"), each shape built by exactly one
// function here and encoded once for all its subscribers. The field lists shared with the
// bridge's responses (a message, a notification, unread counts, an assignment) are the
// JSONWriter extensions in Bridge/PayloadJSON.swift.
extension Publication {
    /// `message`: a committed chat message, to the conversation's subscribers.
    static func message(_ m: StoredMessage) -> Publication {
        // Sized for the text up front: an 8,000-character message would otherwise regrow the buffer.
        .push(channel: m.conversation.channel, seq: m.seq, staffOnly: m.isInternal, capacity: 256 + m.text.utf8.count) { w in
            w.key("type"); w.string("message")
            w.messageFields(m)
        }
    }

    /// `message.updated`: a message's text was edited.
    static func messageUpdated(_ m: StoredMessage) -> Publication {
        .push(channel: m.conversation.channel, staffOnly: m.isInternal, capacity: 160 + m.text.utf8.count) { w in
            w.key("type"); w.string("message.updated")
            w.messageUpdatedFields(m)
        }
    }

    /// `message.deleted`: a message was deleted; its seq stays as a tombstone.
    static func messageDeleted(_ m: StoredMessage) -> Publication {
        .push(channel: m.conversation.channel, staffOnly: m.isInternal) { w in
            w.key("type"); w.string("message.deleted")
            w.messageDeletedFields(m)
        }
    }

    /// `join` or `leave`: a user's first connection into a conversation, or their last out.
    static func membership(_ type: String, _ channel: String, _ user: SessionUser) -> Publication {
        .push(channel: channel, member: user.id) { w in
            w.key("type"); w.string(type)
            w.key("channel"); w.string(channel)
            w.key("user"); w.beginObject()
            w.key("id"); w.string(user.id)
            w.key("role"); w.string(user.role.rawValue)
            w.key("name"); w.string(user.name)
            w.endObject()
        }
    }

    /// `revoked`: the subscription to `channel` ended because access was taken away.
    static func revoked(_ channel: String) -> Publication {
        .push(channel: channel) { w in
            w.key("type"); w.string("revoked")
            w.key("channel"); w.string(channel)
        }
    }

    /// `typing`: a participant is typing.
    static func typing(_ channel: String, _ user: SessionUser) -> Publication {
        .push(channel: channel) { w in
            w.key("type"); w.string("typing")
            w.key("channel"); w.string(channel)
            w.key("user"); w.string(user.id)
            w.key("name"); w.string(user.name)
        }
    }

    /// `status`: an agent's or admin's availability changed.
    static func status(_ channel: String, user: String, _ value: String) -> Publication {
        .push(channel: channel) { w in
            w.key("type"); w.string("status")
            w.key("channel"); w.string(channel)
            w.key("user"); w.string(user)
            w.key("status"); w.string(value)
        }
    }

    /// `read`: a participant's read mark moved.
    static func read(_ channel: String, user: String, seq: Int64) -> Publication {
        .push(channel: channel) { w in
            w.key("type"); w.string("read")
            w.key("channel"); w.string(channel)
            w.key("user"); w.string(user)
            w.key("seq"); w.int(seq)
        }
    }

    /// `notification` to a user's own channel, or `broadcast` to an audience channel, of a stored
    /// record; its id rides along so the delivering session can record the push for receipts.
    static func notificationPush(channel: String, type: String, _ n: NotificationRecord) -> Publication {
        .push(channel: channel, notificationID: n.id, capacity: 256 + n.title.utf8.count + n.body.utf8.count + n.data.utf8.count) { w in
            w.key("type"); w.string(type)
            if type == "broadcast" {
                w.key("id"); w.int(n.id)
                w.key("title"); w.string(n.title)
                w.key("body"); w.string(n.body)
                w.key("data"); w.raw(n.data)
                w.key("ts"); w.int(n.ts)
            } else {
                w.notificationFields(n)
            }
        }
    }

    /// `unread`: a user's unread counts.
    static func unread(_ user: String, _ u: UnreadCounts) -> Publication {
        .push(channel: Channel.user(user).name) { w in
            w.key("type"); w.string("unread")
            w.unreadFields(u)
        }
    }

    /// `assignment`: who serves a conversation now, to a user it concerns.
    /// `conversation`: a conversation's status changed (to a user channel or an audience's).
    static func conversationStatus(to channel: String, _ status: ConversationStatus) -> Publication {
        .push(channel: channel) { w in
            w.key("type"); w.string("conversation")
            w.statusFields(status)
        }
    }

    /// `queue`: a conversation waits for an agent (`unassigned: true`), or was taken from the
    /// queue (`unassigned: false`); to the audiences of the roles that may take it.
    static func queue(to channel: String, _ key: ConversationKey, lastMessage: StoredMessage?, unassigned: Bool) -> Publication {
        .push(channel: channel) { w in
            w.key("type"); w.string("queue")
            w.key("channel"); w.string(key.channel)
            w.key("client"); w.string(key.clientId)
            w.key("service"); w.string(key.service)
            w.key("last_message")
            if let m = lastMessage { w.beginObject(); w.messageFields(m); w.endObject() } else { w.null() }
            w.key("unassigned"); w.bool(unassigned)
        }
    }

    static func assignment(to user: String, _ key: ConversationKey, agent: String?) -> Publication {
        .push(channel: Channel.user(user).name) { w in
            w.key("type"); w.string("assignment")
            w.assignmentFields(key, agent: agent)
        }
    }
}
