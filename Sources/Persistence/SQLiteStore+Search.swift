import Protocol
import Core

// Search on SQLite (docs/protocol.md "Search"): our own inverted index in plain tables
// (migrations 10 and 11), whose document is written in the message's transaction, never FTS5 (whose
// deleted tokens stay in its segments until a merge: a deleted message's words must leave
// the file at once, and secure_delete zeroes what a plain DELETE frees).
// - `search_postings` (term, message_id, conversation_id): one row per distinct term of a
//   message, ordered by term, so the messages of a term or of a prefix are one range;
// - `search_documents` (message_id, conversation_id, terms): a message's terms, to take its
//   postings out again, and to check a candidate against every query term without reading
//   or tokenising its text.
// A send writes only its document: the postings of documents past `search_merge.merged_through`
// (the tail) are written later in batches sorted by term (SearchMerger: one pass over the term
// b-tree per batch, not one per message), and a search reads the tail's documents besides
// the postings. An edit or a delete changes the document and, once merged, the postings at once.
// A search picks the cheapest walk (see `SearchPlan`): the postings of its rarest term, the
// messages of a small scope, or every document newest first while matches are dense.
extension SQLiteStore {
    /// Indexes (or, with nil, removes) a message's words, inside the caller's transaction.
    /// A message's old entries always go (an edit or a delete erases them even with the
    /// index off); new ones are written only while the connection's `searchIndexing` is on.
    /// `merged`: whether its postings belong in `search_postings` now; nil reads the watermark
    /// (a message past it is in the tail: its document alone, postings at the next merge).
    static func indexForSearch(_ db: SQLiteConnection, msgId: Int64, conversation: Int64, text: String?,
                               merged: Bool? = nil) throws {
        let old = try db.statement("DELETE FROM search_documents WHERE message_id = ?1 RETURNING terms")
        try old.bind(.int(msgId))
        let previous = try old.step() ? old.text(0) : nil
        try old.run()
        guard previous != nil || (text != nil && db.searchIndexing) else { return }
        let isMerged = try merged ?? (msgId <= mergedThrough(db))
        if let previous, isMerged {
            let delete = try db.statement("DELETE FROM search_postings WHERE term = ?1 AND message_id = ?2")
            for term in previous.split(separator: " ") {
                delete.reset()
                try delete.bind(.text(String(term)), .int(msgId)).run()
            }
        }
        guard let text, db.searchIndexing else { return }
        let terms = SearchText.terms(text)
        guard !terms.isEmpty else { return }
        if isMerged {
            let insert = try db.statement("INSERT INTO search_postings (term, message_id, conversation_id) VALUES (?1, ?2, ?3)")
            for term in terms {
                insert.reset()
                try insert.bind(.text(term), .int(msgId), .int(conversation)).run()
            }
        }
        try writeDocument(db, msgId: msgId, conversation: conversation, terms: terms, inTail: !isMerged)
    }

    /// A new message's words, inside the send's transaction: its document joins the tail. A new
    /// message has no document yet, and its id is past every other (so past the watermark): none of
    /// `indexForSearch`'s reads are needed on the send path.
    static func addToSearchTail(_ db: SQLiteConnection, msgId: Int64, conversation: Int64, text: String) throws {
        guard db.searchIndexing else { return }
        let terms = SearchText.terms(text)
        guard !terms.isEmpty else { return }
        try writeDocument(db, msgId: msgId, conversation: conversation, terms: terms, inTail: true)
    }

    private static func writeDocument(_ db: SQLiteConnection, msgId: Int64, conversation: Int64, terms: [String], inTail: Bool) throws {
        try db.statement("INSERT INTO search_documents (message_id, conversation_id, terms) VALUES (?1, ?2, ?3)")
            .bind(.int(msgId), .int(conversation), .text(terms.joined(separator: " "))).run()
        if inTail { db.searchTail?.documentAdded() }
    }

    /// The newest message_id whose postings are written; every later document is the tail.
    static func mergedThrough(_ db: SQLiteConnection) throws -> Int64 {
        let s = try db.statement("SELECT merged_through FROM search_merge")
        return try s.step() ? s.int(0) : 0
    }

    static func searchTailSize(_ db: SQLiteConnection) throws -> Int {
        let s = try db.statement("SELECT count(*) FROM search_documents WHERE message_id > (SELECT merged_through FROM search_merge)")
        defer { db.resetStatements() }
        return try s.step() ? Int(s.int(0)) : 0
    }

    /// Writes the postings of the oldest `limit` tail documents, sorted by term (each page of
    /// the term b-tree touched once), and moves the watermark past them, in the caller's
    /// transaction; returns how many documents it merged.
    static func mergeSearchTail(_ db: SQLiteConnection, limit: Int) throws -> Int {
        let through = try mergedThrough(db)
        let range = try db.statement("""
            SELECT count(*), max(message_id) FROM
                (SELECT message_id FROM search_documents WHERE message_id > ?1 ORDER BY message_id LIMIT ?2)
            """)
        try range.bind(.int(through), .int(Int64(limit)))
        guard try range.step(), range.int(0) > 0 else { return 0 }
        let (documents, last) = (Int(range.int(0)), range.int(1))
        // In SQL (its sorter, no row through Swift): a document's terms are letters and digits
        // joined by spaces, so they quote as a JSON array as they are. OR IGNORE: a store
        // whose postings run past its watermark (written by a tool) still merges.
        try db.statement("""
            INSERT OR IGNORE INTO search_postings (term, message_id, conversation_id)
            SELECT t.value, d.message_id, d.conversation_id
            FROM search_documents d, json_each('["' || replace(d.terms, ' ', '","') || '"]') t
            WHERE d.message_id > ?1 AND d.message_id <= ?2
            ORDER BY t.value, d.message_id
            """).bind(.int(through), .int(last)).run()
        try db.statement("UPDATE search_merge SET merged_through = ?1").bind(.int(last)).run()
        return documents
    }

    /// Merges the oldest `limit` documents of the tail (a background writer job).
    func mergeSearchTail(limit: Int = SearchMerger.batch, completion: @escaping StoreCompletion<Int>) {
        write(background: true, { db in try Self.mergeSearchTail(db, limit: limit) }, completion)
    }

    func startSearchMerger() {
        searchMerger.start { [weak self] done in
            guard let self else { return done(nil) }
            mergeSearchTail { result in
                // A merge that keeps failing leaves a growing tail every search reads: say so.
                if case .failure(let error) = result, error != .closing { Log.error("search_merge_failed", ["reason": "\(error)"]) }
                done(try? result.get())
            }
        }
    }

    /// Indexes every stored message that is not deleted (migration 10, on a store written
    /// before search existed), in the migration's transaction.
    static func indexStoredMessages(_ db: SQLiteConnection) throws {
        var after: Int64 = 0
        while true {
            let page = try db.statement("""
                SELECT id, conversation_id, text FROM messages WHERE id > ?1 AND deleted_at IS NULL ORDER BY id LIMIT 2000
                """)
            try page.bind(.int(after))
            var rows: [(Int64, Int64, String)] = []
            while try page.step() { rows.append((page.int(0), page.int(1), page.text(2))) }
            guard let last = rows.last else { return }
            after = last.0
            for (id, conversation, text) in rows {
                try indexForSearch(db, msgId: id, conversation: conversation, text: text, merged: true)
            }
            db.resetStatements()
        }
    }

    public func searchMessages(_ q: SearchQuery, completion: @escaping StoreCompletion<SearchPage>) {
        read({ db in
            // One snapshot: the watermark, the postings and the tail agree.
            try db.execute("BEGIN")
            defer {
                db.resetStatements()
                try? db.execute("COMMIT")
            }
            return try SQLiteSearch(db: db, query: q).run()
        }, completion)
    }
}

/// One search on a reader connection.
struct SQLiteSearch {
    let db: SQLiteConnection
    let query: SearchQuery

    /// Postings counted per term before a term counts as common (counting stops there).
    var commonTerm = 10_000
    /// A scope of at most this many messages is walked message by message when every term is common.
    var walkableScope = 50_000
    /// Documents a dense walk reads before it falls back to the postings of the rarest term.
    var denseWalkBudget = 200_000
    /// Candidates checked per read of `search_documents`.
    static let chunk = 64

    /// The conversations searched: nil means all of them.
    private func scope() throws -> (ids: Set<Int64>?, messages: Int64) {
        func row(_ key: ConversationKey) throws -> (Int64, Int64)? {
            let s = try db.statement("SELECT id, last_seq FROM conversations WHERE service = ?1 AND client_id = ?2")
            try s.bind(.text(key.service), .text(key.clientId))
            return try s.step() ? (s.int(0), s.int(1)) : nil
        }
        var keys: [ConversationKey]?
        switch query.scope {
        case .everything: keys = query.channel.map { [$0] }
        case .conversations(let list): keys = query.channel.map { c in list.contains(c) ? [c] : [] } ?? list
        }
        if let service = query.service { keys = keys?.filter { $0.service == service } }
        var ids = Set<Int64>(), messages: Int64 = 0
        if let keys {
            for key in keys { if let (id, last) = try row(key) { ids.insert(id); messages += last } }
            return (ids, messages)
        }
        if let service = query.service {
            let s = try db.statement("SELECT id, last_seq FROM conversations WHERE service = ?1")
            try s.bind(.text(service))
            while try s.step() { ids.insert(s.int(0)); messages += s.int(1) }
            return (ids, messages)
        }
        let total = try db.statement("SELECT value FROM totals WHERE name = 'messages'")
        return (nil, try total.step() ? total.int(0) : 0)
    }

    /// A document past the watermark: its postings are not written yet.
    typealias TailDocument = (id: Int64, terms: [String])

    /// The tail's documents in the scope, newest first (SearchMerger keeps it short).
    private func tail(_ ids: Set<Int64>?) throws -> [TailDocument] {
        let s = try db.statement("""
            SELECT message_id, conversation_id, terms FROM search_documents
            WHERE message_id > (SELECT merged_through FROM search_merge) ORDER BY message_id DESC
            """)
        var out: [TailDocument] = []
        while try s.step() {
            if ids?.contains(s.int(1)) ?? true { out.append((s.int(0), s.text(2).split(separator: " ").map(String.init))) }
        }
        return out
    }

    /// The messages holding `term` as a prefix (postings and tail), counted up to `cap`.
    private func postings(_ term: String, cap: Int, tail: [TailDocument]) throws -> Int {
        let s = try db.statement("""
            SELECT count(*) FROM (SELECT 1 FROM search_postings WHERE term >= ?1 AND term < ?2 LIMIT ?3)
            """)
        try s.bind(.text(term), .text(term + "\u{10FFFF}"), .int(Int64(cap)))
        let merged = try s.step() ? Int(s.int(0)) : 0
        return min(cap, merged + tail.count { SearchText.matches($0.terms, query: [term]) })
    }

    func run() throws -> SearchPage {
        guard !query.terms.isEmpty else { return SearchPage(items: [], more: false) }
        let (ids, size) = try scope()
        if let ids, ids.isEmpty { return SearchPage(items: [], more: false) }
        let before = query.before ?? Int64.max
        let want = query.limit + 1
        let cap = ids == nil ? commonTerm : Int(min(Int64(commonTerm), size + 1))
        let tail = try tail(ids)
        var rarest = (term: query.terms[0], count: Int.max)
        for term in query.terms {
            let n = try postings(term, cap: cap, tail: tail)
            if n == 0 { return SearchPage(items: [], more: false) }
            if n < rarest.count { rarest = (term, n) }
        }
        var found: [Int64] = []
        if let ids, size <= Int64(rarest.count) || (rarest.count >= commonTerm && size <= Int64(walkableScope)) {
            // A small scope: its messages, newest first.
            try check(try scopeMessages(ids, before: before), into: &found, want: want)
        } else if rarest.count < commonTerm {
            try check(try postingsOf(rarest.term, ids, before: before, tail: tail), into: &found, want: want)
        } else {
            // Every term is common: matches are dense, so the newest documents find them soonest.
            var position = before, read = 0
            while found.count < want && read < denseWalkBudget {
                let page = try db.statement("""
                    SELECT message_id, conversation_id, terms FROM search_documents WHERE message_id < ?1
                    ORDER BY message_id DESC LIMIT 512
                    """)
                try page.bind(.int(position))
                var rows = 0
                var candidates: [(Int64, String)] = []
                while try page.step() {
                    rows += 1
                    position = page.int(0)
                    if ids?.contains(page.int(1)) ?? true { candidates.append((page.int(0), page.text(2))) }
                }
                read += rows
                for (id, terms) in candidates where found.count < want {
                    if SearchText.matches(terms.split(separator: " ").map(String.init), query: query.terms), try visible(id) {
                        found.append(id)
                    }
                }
                if rows < 512 { break }
            }
            if found.count < want && read >= denseWalkBudget {
                try check(try postingsOf(rarest.term, ids, before: position, tail: tail), into: &found, want: want)
            }
        }
        var items: [SearchHit] = []
        for id in found.prefix(query.limit) {
            if let m = try message(id) { items.append(SearchHit(message: m, snippet: SearchText.snippet(m.text, query: query.terms))) }
        }
        return SearchPage(items: items, more: found.count > query.limit)
    }

    /// The messages of the scope before `before`, newest first.
    private func scopeMessages(_ ids: Set<Int64>, before: Int64) throws -> [Int64] {
        var out: [Int64] = []
        for id in ids {
            let s = try db.statement("SELECT id FROM messages WHERE conversation_id = ?1 AND id < ?2")
            try s.bind(.int(id), .int(before))
            while try s.step() { out.append(s.int(0)) }
        }
        return out.sorted(by: >)
    }

    /// The messages holding a term that starts with `term`, in the scope, before `before`,
    /// newest first: from the postings and from the tail (`tail`: in the scope already).
    private func postingsOf(_ term: String, _ ids: Set<Int64>?, before: Int64, tail: [TailDocument]) throws -> [Int64] {
        let s = try db.statement("""
            SELECT message_id, conversation_id FROM search_postings WHERE term >= ?1 AND term < ?2 AND message_id < ?3
            """)
        try s.bind(.text(term), .text(term + "\u{10FFFF}"), .int(before))
        var out: [Int64] = []
        while try s.step() { if ids?.contains(s.int(1)) ?? true { out.append(s.int(0)) } }
        for d in tail where d.id < before && SearchText.matches(d.terms, query: [term]) { out.append(d.id) }
        // A message is in the range once per matching term: one entry each.
        return Array(Set(out)).sorted(by: >)
    }

    /// Checks candidates (newest first) against every term, in chunks, until `want` are found.
    private func check(_ candidates: [Int64], into found: inout [Int64], want: Int) throws {
        var start = 0
        while found.count < want && start < candidates.count {
            let chunk = Array(candidates[start..<min(start + Self.chunk, candidates.count)])
            start += chunk.count
            var terms: [Int64: String] = [:]
            // A fixed number of placeholders (padded with 0, no message's id): one cached statement.
            let s = try db.statement("SELECT message_id, terms FROM search_documents WHERE message_id IN ("
                                     + (1...Self.chunk).map { "?\($0)" }.joined(separator: ",") + ")")
            try s.bind(chunk.map { .int($0) } + Array(repeating: .int(0), count: Self.chunk - chunk.count))
            while try s.step() { terms[s.int(0)] = s.text(1) }
            for id in chunk where found.count < want {
                guard let t = terms[id], SearchText.matches(t.split(separator: " ").map(String.init), query: query.terms) else { continue }
                if try visible(id) { found.append(id) }
            }
        }
    }

    /// Not deleted, and not a note unless notes are searched.
    private func visible(_ id: Int64) throws -> Bool {
        let s = try db.statement("SELECT internal, deleted_at IS NULL FROM messages WHERE id = ?1")
        try s.bind(.int(id))
        guard try s.step() else { return false }
        return s.int(1) != 0 && (query.withNotes || s.int(0) == 0)
    }

    private func message(_ id: Int64) throws -> StoredMessage? {
        let s = try db.statement("""
            SELECT \(SQLiteStore.qualifiedMessageColumns), c.service, c.client_id
            FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?1
            """)
        try s.bind(.int(id))
        guard try s.step() else { return nil }
        let n = SQLiteStore.messageColumnCount
        return SQLiteStore.message(s, ConversationKey(service: s.text(n), clientId: s.text(n + 1)))
    }
}
