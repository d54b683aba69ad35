import Foundation
import Glibc
import XCTest
import Core
import Protocol

/// Hub node processes of one test cluster, started as the README's operator page says: one
/// PostgreSQL schema (a fresh one per test), Redis instances, a cluster name of their own.
/// `tearDown` kills every node still running and drops the schema.
final class ClusterProcesses {
    struct Node {
        let id: String
        let process: HubProcess
        let port: Int
        let bridge: Int
    }

    let database: TestDatabase
    private(set) var nodes: [Node] = []

    init() throws {
        database = try TestDatabase()
    }

    /// The test environment's Redis instances, in the same order for every node.
    static var environmentBrokers: [String] {
        let env = ProcessInfo.processInfo.environment
        return ["MONTROSE_TEST_REDIS", "MONTROSE_TEST_REDIS2"].compactMap { env[$0] }.filter { !$0.isEmpty }
    }

    /// Starts a node and waits for its listeners. `brokers`: the environment's instances unless
    /// given; `store`: the schema's URL unless given (a URL through a proxy, say); `extra`:
    /// more flags.
    func start(_ id: String, brokers: [String]? = nil, store: String? = nil, extra: [String] = []) throws -> Node {
        var args = ["--port", "0", "--bridge-port", "0", "--data", TestDirectory.make("node-\(id)"), "--no-dev",
                    "--jwt-secret", TestHub.secret, "--bridge-key", TestHub.bridgeKey, "--loops", "1",
                    "--store", store ?? database.url, "--node-id", id, "--cluster-name", database.name] + extra
        for url in brokers ?? Self.environmentBrokers { args += ["--broker", url] }
        let p = try HubProcess(args)
        guard let line = p.waitForLine(containing: "public listening", timeout: 30), let port = HubProcess.port(in: line),
              let bridgeLine = p.waitForLine(containing: "bridge listening"), let bridge = HubProcess.port(in: bridgeLine) else {
            p.signal(SIGKILL)
            throw TestError("node \(id) did not start: \(p.outputLines) \(p.standardError)")
        }
        let node = Node(id: id, process: p, port: port, bridge: bridge)
        nodes.append(node)
        return node
    }

    /// The schema's URL with PostgreSQL's port replaced (to go through a proxy on 127.0.0.1).
    func storeURL(throughPort port: Int) throws -> String {
        guard let server = URLComponents(string: database.serverURL), let pgPort = server.port else {
            throw TestError("MONTROSE_TEST_PG has no port: \(database.serverURL)")
        }
        return database.url.replacingOccurrences(of: ":\(pgPort)/", with: ":\(port)/")
    }

    /// PostgreSQL's port (MONTROSE_TEST_PG).
    var postgresPort: Int? { URLComponents(string: database.serverURL)?.port }

    func tearDown() {
        for n in nodes {
            n.process.signal(SIGCONT) // a node left stopped must still die
            n.process.signal(SIGKILL)
            _ = n.process.waitForExit(timeout: 5)
        }
        nodes = []
        database.drop()
    }
}

/// Reads a chat client's `message` pushes on a thread of its own (the client belongs to that
/// thread until `stop`), so a flood never makes the hub find the client slow. Records the seqs
/// in arrival order with their client_msg_ids, and how the connection ended, if it did.
final class MessageReader: @unchecked Sendable {
    let name: String
    private let client: ChatClient
    private let received = Locked<(seqs: [Int64], ids: [Int64: String], ended: String?)>(([], [:], nil))
    private let stopping = Locked(false)
    private let done = DispatchSemaphore(value: 0)

    /// `before` and `catchUp`: what this reader's user got on an earlier connection and in the
    /// answer to `subscribe` with `since` on this one (seq, client_msg_id), counted first.
    init(_ name: String, _ client: ChatClient, before: MessageReader? = nil, catchUp: [(Int64, String)] = []) {
        self.name = name
        self.client = client
        received.withLock { r in
            if let before {
                r.seqs = before.seqs
                r.ids = before.ids
            }
            for (seq, id) in catchUp {
                r.seqs.append(seq)
                r.ids[seq] = id
            }
        }
        Thread { [self] in
            run()
            done.signal()
        }.start()
    }

    var seqs: [Int64] { received.withLock { $0.seqs } }
    var ids: [Int64: String] { received.withLock { $0.ids } }
    var ended: String? { received.withLock { $0.ended } }
    var last: Int64 { received.withLock { $0.seqs.last ?? 0 } }

    /// Waits until the reader has `seq` (or its connection ended, or `seconds` passed).
    @discardableResult
    func wait(through seq: Int64, seconds: Double = 30) -> Bool {
        _ = eventually(seconds) { received.withLock { ($0.seqs.last ?? 0) >= seq || $0.ended != nil } }
        return last >= seq
    }

    /// Stops reading (waits for the thread); the client may be used again afterwards.
    func stop() {
        stopping.withLock { $0 = true }
        _ = done.wait(timeout: .now() + 5)
    }

    private func run() {
        let fd = client.ws.socket.fd
        // Pushes that came in with earlier replies.
        while let early = try? takeQueued() { record(early) }
        while !stopping.withLock({ $0 }) {
            if client.ws.socket.pending.isEmpty {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 100) > 0 else { continue }
            }
            // Something arrived: a whole frame follows at once (the hub writes frames whole).
            client.ws.socket.setTimeout(15)
            do {
                let v = try client.next()
                if v["type"]?.stringValue == "message" { record(v) }
            } catch {
                received.withLock { $0.ended = "\(error)" }
                return
            }
        }
    }

    /// (JSON takes a nil literal as `null`: the empty case is spelled out.)
    private func takeQueued() throws -> Optional<JSON> {
        guard client.pushes.contains(where: { $0["type"]?.stringValue == "message" }) else { return Optional<JSON>.none }
        return try client.push("message")
    }

    private func record(_ m: JSON) {
        guard let seq = m["seq"]?.intValue else { return }
        received.withLock {
            $0.seqs.append(seq)
            $0.ids[seq] = m["client_msg_id"]?.stringValue ?? ""
        }
    }

    /// Gaps (a seq missing before the last), duplicates, and seqs out of order, in `seqs`
    /// starting after `after`.
    static func audit(_ seqs: [Int64], after: Int64 = 0) -> (gaps: Int, dups: Int, disorder: Int) {
        var seen = Set<Int64>(), dups = 0, disorder = 0, previous = after
        for s in seqs {
            if !seen.insert(s).inserted || s <= after { dups += 1; continue }
            if s != previous + 1 { disorder += 1 }
            previous = max(previous, s)
        }
        let top = seqs.max() ?? after
        let gaps = top > after ? Int(top - after) - seen.filter { $0 > after }.count : 0
        return (gaps, dups, disorder)
    }
}

extension ChatClient {
    /// A send on `channel`; the whole reply (ok with a result, or an error).
    func sendMessage(_ channel: String, _ clientMsgID: String, text: String? = nil) throws -> JSON {
        try request("send", ["channel": .string(channel), "text": .string(text ?? clientMsgID), "client_msg_id": .string(clientMsgID)])
    }
}

extension ChatClient {
    /// Sends one message per id in `ids` with up to `window` unanswered at a time; each reply
    /// (ok or error) lands in `replies` as it comes, so after a throw (the connection died)
    /// `replies` says which sends were answered. Pushes arriving meanwhile are ignored (use a
    /// connection that subscribes to nothing).
    func sendPipelined(_ channel: String, _ ids: [String], replies: inout [String: JSON], window: Int = 32,
                       text: (String) -> String = { $0 }) throws {
        var outstanding: [Int64: String] = [:]
        var sent = 0
        while sent < ids.count || !outstanding.isEmpty {
            while sent < ids.count && outstanding.count < window {
                let requestID = (1 << 40) + Int64(sent)
                let body: JSON = .object(["id": .int(requestID), "op": .string("send"), "channel": .string(channel),
                                          "text": .string(text(ids[sent])), "client_msg_id": .string(ids[sent])])
                try ws.send(body.text)
                outstanding[requestID] = ids[sent]
                sent += 1
            }
            let v = try next()
            if v["type"] != nil { continue }
            if let requestID = v["id"]?.intValue, let id = outstanding.removeValue(forKey: requestID) { replies[id] = v }
        }
    }
}
