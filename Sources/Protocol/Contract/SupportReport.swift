// The support desk's report (docs/protocol.md "Support reports"): what a store reads from its
// desk events over a range, and the figures made of it, the same for the bridge's
// `GET /v1/reports/support` and the console's `admin.report`. Pure: rows in, figures out.

/// The stored events of a range, as a store reads them.
public struct SupportEvents: Sendable, Equatable {
    /// A cycle opened by a client's message: its conversation, the agent serving it then.
    public struct Opened: Sendable, Equatable {
        public var conversation: ConversationKey
        public var agent: String?
        public var ts: Int64
        /// The first reply by an agent or admin after it (not a note), and who wrote it.
        public var firstResponseMs: Int64?
        public var responder: String?
        public init(conversation: ConversationKey, agent: String?, ts: Int64, firstResponseMs: Int64? = nil, responder: String? = nil) {
            self.conversation = conversation
            self.agent = agent
            self.ts = ts
            self.firstResponseMs = firstResponseMs
            self.responder = responder
        }
    }

    /// A cycle resolved: by whom it was served, and how long after it opened.
    public struct Resolved: Sendable, Equatable {
        public var conversation: ConversationKey
        public var agent: String?
        public var ts: Int64
        public var resolutionMs: Int64?
        public init(conversation: ConversationKey, agent: String?, ts: Int64, resolutionMs: Int64?) {
            self.conversation = conversation
            self.agent = agent
            self.ts = ts
            self.resolutionMs = resolutionMs
        }
    }

    public var opened: [Opened]
    public var resolved: [Resolved]
    /// Conversations in the queue when the range starts.
    public var queuedAtStart: Int
    /// Entries (+1) and exits (-1) of the queue within the range, by time.
    public var queueChanges: [(ts: Int64, delta: Int)]

    public init(opened: [Opened] = [], resolved: [Resolved] = [], queuedAtStart: Int = 0, queueChanges: [(ts: Int64, delta: Int)] = []) {
        self.opened = opened
        self.resolved = resolved
        self.queuedAtStart = queuedAtStart
        self.queueChanges = queueChanges
    }

    public static func == (a: SupportEvents, b: SupportEvents) -> Bool {
        a.opened == b.opened && a.resolved == b.resolved && a.queuedAtStart == b.queuedAtStart
            && a.queueChanges.elementsEqual(b.queueChanges) { $0.ts == $1.ts && $0.delta == $1.delta }
    }
}

/// The figures: per service and per agent, conversations opened and resolved, and the
/// median and 90th percentile of first-response and resolution times; the queue's length at
/// the end of each of `points` equal steps of the range, with its peak within each.
public struct SupportReport: Sendable, Equatable {
    public struct Durations: Sendable, Equatable {
        public var count = 0
        public var medianMs: Int64?
        public var p90Ms: Int64?
        public init(_ values: [Int64]) {
            let sorted = values.sorted()
            count = sorted.count
            medianMs = Self.percentile(sorted, 50)
            p90Ms = Self.percentile(sorted, 90)
        }
        /// Nearest rank: the smallest value with at least p% of the values at or below it.
        static func percentile(_ sorted: [Int64], _ p: Int) -> Int64? {
            guard !sorted.isEmpty else { return nil }
            let rank = (p * sorted.count + 99) / 100
            return sorted[max(0, min(sorted.count - 1, rank - 1))]
        }
    }

    public struct Figures: Sendable, Equatable {
        public var opened = 0
        public var resolved = 0
        public var firstResponse = Durations([])
        public var resolution = Durations([])
    }

    public struct QueuePoint: Sendable, Equatable {
        public var ts: Int64
        public var length: Int
        public var peak: Int
    }

    public var from: Int64
    public var to: Int64
    public var total = Figures()
    public var byService: [String: Figures] = [:]
    public var byAgent: [String: Figures] = [:]
    public var queue: [QueuePoint] = []

    /// The longest range a report covers, and the one it covers when none is given.
    public static let maxRangeMs: Int64 = 366 * 86_400_000
    public static let defaultRangeMs: Int64 = 7 * 86_400_000

    /// The range a request asks for (ms since the epoch, `from` included, `to` not; `to`
    /// defaults to just after now, so what happened this millisecond counts, and `from` to a
    /// week before `to`), or why it cannot be reported.
    public static func range(from: Int64?, to: Int64?, now: Int64) -> Result<(from: Int64, to: Int64), RangeRefusal> {
        let end = to ?? now + 1
        let start = from ?? end - defaultRangeMs
        guard start >= 0, end > start else { return .failure(RangeRefusal(message: "from must be before to (ms since the epoch)")) }
        guard end - start <= maxRangeMs else { return .failure(RangeRefusal(message: "a report covers at most 366 days")) }
        return .success((start, end))
    }

    public struct RangeRefusal: Error, Equatable {
        public let message: String
    }

    /// The name agent-less events are counted under in `byAgent`.
    public static let noAgent = "unassigned"
    /// Steps of the queue series.
    public static let points = 24

    public init(_ e: SupportEvents, from: Int64, to: Int64) {
        self.from = from
        self.to = to
        var firsts: [String: [Int64]] = [:], resolutions: [String: [Int64]] = [:]
        func add(_ key: String, _ into: inout [String: [Int64]], _ v: Int64?) { if let v { into[key, default: []].append(v) } }
        for o in e.opened {
            total.opened += 1
            byService[o.conversation.service, default: Figures()].opened += 1
            byAgent[o.agent ?? Self.noAgent, default: Figures()].opened += 1
            add("", &firsts, o.firstResponseMs)
            add("s:" + o.conversation.service, &firsts, o.firstResponseMs)
            // A first response counts for whoever gave it.
            if let who = o.responder { add("a:" + who, &firsts, o.firstResponseMs) }
        }
        for r in e.resolved {
            total.resolved += 1
            byService[r.conversation.service, default: Figures()].resolved += 1
            byAgent[r.agent ?? Self.noAgent, default: Figures()].resolved += 1
            add("", &resolutions, r.resolutionMs)
            add("s:" + r.conversation.service, &resolutions, r.resolutionMs)
            add("a:" + (r.agent ?? Self.noAgent), &resolutions, r.resolutionMs)
        }
        total.firstResponse = Durations(firsts[""] ?? [])
        total.resolution = Durations(resolutions[""] ?? [])
        for key in Set(firsts.keys).union(resolutions.keys) where !key.isEmpty {
            let name = String(key.dropFirst(2))
            let first = Durations(firsts[key] ?? []), resolution = Durations(resolutions[key] ?? [])
            if key.hasPrefix("s:") {
                byService[name, default: Figures()].firstResponse = first
                byService[name, default: Figures()].resolution = resolution
            } else {
                byAgent[name, default: Figures()].firstResponse = first
                byAgent[name, default: Figures()].resolution = resolution
            }
        }
        queue = Self.series(start: e.queuedAtStart, e.queueChanges, from: from, to: to)
    }

    /// The queue's length at the end of each step, and its peak within it.
    static func series(start: Int, _ changes: [(ts: Int64, delta: Int)], from: Int64, to: Int64) -> [QueuePoint] {
        guard to > from else { return [] }
        let steps = Int64(points)
        var out: [QueuePoint] = []
        var length = start, i = 0
        let sorted = changes.sorted { $0.ts < $1.ts }
        for step in 1...steps {
            let end = from + (to - from) * step / steps
            var peak = length
            while i < sorted.count && (sorted[i].ts < end || (step == steps && sorted[i].ts <= end)) {
                length = max(0, length + sorted[i].delta)
                peak = max(peak, length)
                i += 1
            }
            out.append(QueuePoint(ts: end, length: length, peak: peak))
        }
        return out
    }
}

extension JSONWriter {
    /// `{from, to, total, by_service, by_agent, queue}`.
    public mutating func supportReportFields(_ r: SupportReport) {
        key("from"); int(r.from)
        key("to"); int(r.to)
        key("total"); figures(r.total)
        key("by_service"); beginObject()
        for (name, f) in r.byService.sorted(by: { $0.key < $1.key }) { key(name); figures(f) }
        endObject()
        key("by_agent"); beginObject()
        for (name, f) in r.byAgent.sorted(by: { $0.key < $1.key }) { key(name); figures(f) }
        endObject()
        key("queue"); objects(r.queue) { w, p in
            w.key("ts"); w.int(p.ts)
            w.key("length"); w.int(p.length)
            w.key("peak"); w.int(p.peak)
        }
    }

    private mutating func figures(_ f: SupportReport.Figures) {
        beginObject()
        key("opened"); int(f.opened)
        key("resolved"); int(f.resolved)
        key("first_response_ms"); durations(f.firstResponse)
        key("resolution_ms"); durations(f.resolution)
        endObject()
    }

    private mutating func durations(_ d: SupportReport.Durations) {
        beginObject()
        key("count"); int(d.count)
        key("median"); if let m = d.medianMs { int(m) } else { null() }
        key("p90"); if let p = d.p90Ms { int(p) } else { null() }
        endObject()
    }
}
