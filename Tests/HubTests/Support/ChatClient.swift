import Foundation
import Protocol
import XCTest

// A chat client over the project's WebSocket client: requests matched by id, pushes queued.
final class ChatClient {
    let ws: WSClient
    private var nextID: Int64 = 1
    private(set) var pushes: [JSON] = []
    /// The `session` the hub returned on auth: "<loop>.<slot>.<generation>".
    private(set) var session = ""
    /// The loop of `loop.slot.generation` (after `node/` on several nodes).
    var loopIndex: Int { Int(session.split(separator: "/").last?.split(separator: ".").first ?? "") ?? -1 }

    init(port: Int, token: String? = nil, urlToken: String? = nil, receiveBuffer: Int32? = nil) throws {
        ws = try WSClient(port: port, path: urlToken.map { "/ws?token=\($0)" } ?? "/ws", receiveBuffer: receiveBuffer)
        if let token {
            let r = try request("auth", ["token": .string(token)])
            guard r["ok"]?.boolValue == true else { throw TestError("auth failed: \(r.text)") }
            session = r["result"]?["session"]?.stringValue ?? ""
        }
    }

    /// Sends an op and returns its reply; pushes that arrive meanwhile are queued.
    @discardableResult
    func request(_ op: String, _ params: JSONObject = [:]) throws -> JSON {
        let id = nextID
        nextID += 1
        var body = params
        body["id"] = .int(id)
        body["op"] = .string(op)
        try ws.send(JSON.object(body).text)
        return try reply(to: id)
    }

    func reply(to id: Int64) throws -> JSON {
        while true {
            let v = try next()
            // A push has a `type` (and a notification push an `id` of its own): never a reply.
            if v["type"] != nil { pushes.append(v); continue }
            if v["id"]?.intValue == id { return v }
        }
    }

    /// The next JSON frame (fails on a close frame).
    func next() throws -> JSON {
        let m = try ws.readMessage()
        if m.opcode == .close { throw TestError("closed with \(m.closeCode ?? 0) \(m.closeReason)") }
        return try JSONParser.parse(m.payload)
    }

    /// The next push of `type`, from the queue or the socket.
    func push(_ type: String) throws -> JSON {
        if let i = pushes.firstIndex(where: { $0["type"]?.stringValue == type }) { return pushes.remove(at: i) }
        while true {
            let v = try next()
            if v["type"]?.stringValue == type { return v }
            if v["type"] != nil { pushes.append(v) }
        }
    }

    /// The next push of `type`, waiting up to `timeout` seconds for each frame.
    func push(_ type: String, timeout: TimeInterval) throws -> JSON {
        ws.socket.setTimeout(timeout)
        defer { ws.socket.setTimeout(5) }
        return try push(type)
    }

    func result(_ op: String, _ params: JSONObject = [:]) throws -> JSON {
        let r = try request(op, params)
        guard r["ok"]?.boolValue == true, let result = r["result"] else { throw TestError("\(op) failed: \(r.text)") }
        return result
    }

    /// True when no push of `type` arrives within `seconds`.
    func noPush(_ type: String, within seconds: TimeInterval) -> Bool {
        if pushes.contains(where: { $0["type"]?.stringValue == type }) { return false }
        ws.socket.setTimeout(seconds)
        defer { ws.socket.setTimeout(5) }
        while true {
            guard let v = try? next() else { return true }
            if v["type"]?.stringValue == type { return false }
            if v["type"] != nil { pushes.append(v) }
        }
    }

    func errorCode(_ op: String, _ params: JSONObject = [:]) throws -> String? {
        try request(op, params)["error"]?["code"]?.stringValue
    }
}
