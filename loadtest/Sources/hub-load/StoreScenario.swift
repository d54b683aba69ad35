import Foundation
import Glibc
import Persistence
import Protocol
import Synchronization

// `hub-load store`: the SQLite store alone, without sockets or the loop. Sends go straight to
// `SQLiteStore.appendMessage` (its writer thread, group commit, search index, everything a
// `send` op stores), `window` in flight per conversation, from one client per conversation as
// in `chat`. What it tells: the store's cost per message, and so the most durable chat can
// reach on one core whatever the loop does (compare `hub-load chat`, row g of bench.sh).
// Measured while sending: acks per second and this process's CPU per ack (run it pinned to one
// CPU, as bench.sh pins the hub). The search index's background merge runs as in the hub and
// is counted in the CPU it takes during the run; so is making each next send (a text and a few
// small values, in the previous send's completion on the writer's thread). No notifications:
// `notify` is empty, as for a conversation whose other side is watching.

struct StoreOptions {
    var data = ""
    var conversations = 1000
    var window = 4
    var duration = 10.0
    var textBytes = 64
    var searchIndex = true
    var durability = SQLiteStore.Durability.full

    static let usage = """
    usage: hub-load store --data DIR [options]   (DIR: an empty folder; the store is made in it)
      --conversations N   conversations, one client sending in each (default 1000)
      --window W          sends in flight per conversation, 1-64 (default 4)
      --duration S        seconds of sending (default 10)
      --text-bytes N      message text length, 16-4096 (default 64)
      --search-index on|off   as the hub's flag (default on)
      --durability full|normal  as the hub's flag (default full)
    """

    static func parse(_ args: ArraySlice<String>) throws(UsageError) -> StoreOptions {
        var o = StoreOptions()
        var f = Flags(args)
        while let flag = f.next() {
            switch flag {
            case "--data": o.data = try f.value(flag)
            case "--conversations": o.conversations = try f.int(flag, 1...100_000)
            case "--window": o.window = try f.int(flag, 1...64)
            case "--duration": o.duration = try f.seconds(flag, 0.5...600)
            case "--text-bytes": o.textBytes = try f.int(flag, 16...4096)
            case "--search-index":
                switch try f.value(flag) {
                case "on": o.searchIndex = true
                case "off": o.searchIndex = false
                case let v: throw UsageError(message: "--search-index must be on or off, got \(v)")
                }
            case "--durability":
                let v = try f.value(flag)
                guard let d = SQLiteStore.Durability(rawValue: v) else { throw UsageError(message: "--durability must be full or normal, got \(v)") }
                o.durability = d
            case "-h", "--help": throw UsageError(message: usage)
            default: throw UsageError(message: "unknown flag \(flag)\n\(usage)")
            }
        }
        guard !o.data.isEmpty else { throw UsageError(message: "--data is required\n\(usage)") }
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: o.data)) ?? []
        guard existing.isEmpty else { throw UsageError(message: "--data must be an empty folder (the store is made there), got \(o.data)") }
        return o
    }
}

struct StoreScenario {
    let o: StoreOptions

    /// Counts shared with the writer thread, where completions run.
    private final class Counts: Sendable {
        let acked = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let inFlight = Atomic<Int>(0)
        let sending = Atomic<Bool>(true)
    }

    func run() -> Bool {
        let store: SQLiteStore
        do {
            try FileManager.default.createDirectory(atPath: o.data, withIntermediateDirectories: true)
            store = try SQLiteStore(path: o.data + "/hub.sqlite", now: Int64(Date().timeIntervalSince1970 * 1000),
                                    messageWording: { _, count in ("New messages", "\(count) new") },
                                    searchIndex: o.searchIndex, durability: o.durability)
        } catch {
            print("hub-load store: could not open a store in \(o.data): \(error)")
            return false
        }
        defer { store.close() }
        let counts = Counts()
        let o = self.o
        let pad = String(repeating: "x", count: max(0, o.textBytes - 40))
        // One client per conversation; a message's words vary as chat's do (a time, a counter).
        @Sendable func send(_ c: Int, _ n: Int) {
            let key = ConversationKey(service: "website", clientId: "ls-\(c)")
            let sender = UserRecord(id: "ls-\(c)", role: "client", name: "Load client \(c)")
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let m = NewMessage(conversation: key, sender: sender, text: "lt \(DispatchTime.now().uptimeNanoseconds) \(c) \(n) \(pad)",
                               clientMsgId: "s\(c)-\(n)", ts: now)
            counts.inFlight.add(1, ordering: .relaxed)
            store.appendMessage(m, notify: []) { result in
                if case .success = result { counts.acked.add(1, ordering: .relaxed) } else { counts.failed.add(1, ordering: .relaxed) }
                // The next send first: in flight never reads 0 while one is still to be made.
                if counts.sending.load(ordering: .relaxed) { send(c, n + o.window) }
                counts.inFlight.subtract(1, ordering: .relaxed)
            }
        }
        let cpu0 = CPUTime.used(), t0 = DispatchTime.now().uptimeNanoseconds
        for c in 0..<o.conversations { for w in 0..<o.window { send(c, w) } }
        usleep(UInt32(o.duration * 1_000_000))
        let acked = counts.acked.load(ordering: .relaxed)
        let cpu1 = CPUTime.used(), t1 = DispatchTime.now().uptimeNanoseconds
        counts.sending.store(false, ordering: .relaxed)
        // What is in flight is answered before the store closes (bounded: 30 s).
        var waited = 0
        while counts.inFlight.load(ordering: .relaxed) > 0 && waited < 3000 {
            usleep(10_000)
            waited += 1
        }
        let seconds = Double(t1 - t0) / 1e9
        let failed = counts.failed.load(ordering: .relaxed)
        let perSecond = Double(acked) / seconds
        let cpuPerAck = acked > 0 ? (cpu1 - cpu0) / Double(acked) * 1e6 : 0
        print("store: \(acked) acks in \(Fmt.f(seconds)) s = \(Fmt.f(perSecond, 0)) acks/s; "
              + "\(Fmt.f(cpuPerAck)) µs of CPU per ack; \(failed) failed; search index \(o.searchIndex ? "on" : "off"), durability \(o.durability.rawValue)")
        // One JSON line, in the same shape as the other scenarios' (the hub's own JSON writer).
        var j = JSONObject()
        j["scenario"] = "store"
        j["conversations"] = .int(Int64(o.conversations))
        j["window"] = .int(Int64(o.window))
        j["duration_s"] = Fmt.round(seconds, 3)
        j["acked"] = .int(Int64(acked))
        j["failed"] = .int(Int64(failed))
        j["acks_per_s"] = Fmt.round(perSecond, 0)
        j["cpu_us_per_ack"] = Fmt.round(cpuPerAck)
        j["search_index"] = .bool(o.searchIndex)
        j["durability"] = .string(o.durability.rawValue)
        j["passed"] = .bool(failed == 0 && acked > 0)
        print(JSON.object(j).text)
        return failed == 0 && acked > 0
    }
}
