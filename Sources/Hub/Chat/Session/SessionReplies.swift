import Core
import Persistence
import Protocol

// Replies to ops (`{"id", "ok", "result" | "error"}`), and the param checks ops share.
extension Session {
    func reply(_ c: Connection, _ id: Int64?, _ result: (inout JSONWriter) -> Void) {
        c.loop.withAnswerWriter { w in
            w.beginObject()
            w.key("id"); if let id { w.int(id) } else { w.null() }
            w.key("ok"); w.bool(true)
            w.key("result"); w.beginObject(); result(&w); w.endObject()
            w.endObject()
            c.send(.text, w.bytes)
        }
    }

    func replyError(_ c: Connection, _ id: Int64?, _ code: ErrorCode, _ message: String) {
        c.loop.withAnswerWriter { w in
            w.beginObject()
            w.key("id"); if let id { w.int(id) } else { w.null() }
            w.key("ok"); w.bool(false)
            w.key("error"); w.beginObject()
            w.key("code"); w.string(code.rawValue)
            w.key("message"); w.string(message)
            w.endObject()
            w.endObject()
            c.send(.text, w.bytes)
        }
    }

    func replyStoreError(_ c: Connection, _ id: Int64, _ e: StoreError) {
        if case .internalError(let why) = e { Log.error("store_error", ["reason": why]) }
        let (code, message) = e.reply
        replyError(c, id, code, message)
    }

    /// The channel named by `request["channel"]` if the user may use it; replies otherwise.
    func channel(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) -> (Channel, Access)? {
        guard let name = request["channel"]?.stringValue else {
            replyError(c, id, .badRequest, "channel must be a string")
            return nil
        }
        guard let channel = Channel(name) else {
            replyError(c, id, .notFound, "no such channel")
            return nil
        }
        let access = Access.of(user, channel, directory: chat.directory)
        guard access != .denied else {
            Log.info("forbidden", ["user": user.id, "channel": name])
            replyError(c, id, .forbidden, "not allowed on this channel")
            return nil
        }
        return (channel, access)
    }

    /// Agents and admins read internal notes; a client never does.
    var seesNotes: Bool { user?.role.isStaff ?? false }

    /// The messages of a page this session may read (a client's without internal notes).
    func visible(_ messages: [StoredMessage]) -> [StoredMessage] {
        seesNotes ? messages : messages.filter { !$0.isInternal }
    }

    func optionalInt(_ request: JSON, _ key: String) -> (present: Bool, value: Int64?) {
        guard let v = request[key], !v.isNull else { return (false, nil) }
        return (true, v.intValue)
    }

    /// An optional string param from `allowed`: `.some(nil)` when absent, nil (after replying
    /// `bad_request`) when present but not one of them.
    func optionalChoice(_ c: Connection, _ id: Int64, _ request: JSON, _ key: String, _ allowed: [String]) -> String?? {
        guard let v = request[key], !v.isNull else { return .some(nil) }
        guard let s = v.stringValue, allowed.contains(s) else {
            replyError(c, id, .badRequest, "\(key) must be one of \(allowed.joined(separator: ", "))")
            return nil
        }
        return .some(s)
    }
}
