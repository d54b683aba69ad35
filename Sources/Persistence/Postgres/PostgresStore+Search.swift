import Protocol

// Search on PostgreSQL (docs/protocol.md "Search"): PostgreSQL's own full-text search over the
// terms the hub computes (schema version 11): `messages.search_terms` is a tsvector of the
// message's SearchText terms, written by the statement that writes the text (hub_append, the
// edit's UPDATE; a delete sets it NULL), with a GIN index. A query is its terms as prefixes
// (`'term':* & …`); the planner picks between the index and walking a small scope.
extension PostgresStore {
    /// A message's terms for `hub_terms` (space-separated), or nil while the index is off.
    func searchTerms(_ text: String) -> String? {
        searchIndex ? SearchText.terms(text).joined(separator: " ") : nil
    }

    /// Indexes the stored messages with no terms yet (not deleted): schema version 11 on a
    /// store written before it, and `migrate` after copying a SQLite store's messages.
    static func indexStoredMessages(_ db: PGConnection) throws {
        var after: Int64 = 0
        while true {
            let r = try db.query("""
                SELECT id, text, text_escaped FROM messages
                WHERE id > $1::bigint AND search_terms IS NULL AND deleted_at IS NULL ORDER BY id LIMIT 2000
                """, ["\(after)"])
            guard r.count > 0 else { return }
            var ids: [String] = [], terms: [String] = []
            for row in 0..<r.count {
                ids.append("\(r.int(row, 0))")
                terms.append(SearchText.terms(original(r.text(row, 1), escaped: r.bool(row, 2))).joined(separator: " "))
            }
            after = r.int(r.count - 1, 0)
            _ = try db.query("""
                UPDATE messages SET search_terms = hub_terms(t.terms)
                FROM unnest($1::bigint[], $2::text[]) AS t(id, terms) WHERE messages.id = t.id
                """, [PGConnection.textArray(ids), PGConnection.textArray(terms)])
        }
    }

    /// The query's terms as a tsquery: each a prefix, all required.
    static func tsquery(_ terms: [String]) -> String {
        terms.map { term in
            var quoted = "'"
            for c in term.unicodeScalars {
                if c == "'" || c == "\\" { quoted.unicodeScalars.append(c) }
                quoted.unicodeScalars.append(c)
            }
            return quoted + "':*"
        }.joined(separator: " & ")
    }

    public func searchMessages(_ q: SearchQuery, completion: @escaping StoreCompletion<SearchPage>) {
        var keys: [ConversationKey]?
        switch q.scope {
        case .everything: keys = q.channel.map { [$0] }
        case .conversations(let list): keys = q.channel.map { c in list.contains(c) ? [c] : [] } ?? list
        }
        if let service = q.service { keys = keys?.filter { $0.service == service } }
        guard !q.terms.isEmpty, keys?.isEmpty != true else { return completion(.success(SearchPage(items: [], more: false))) }
        let params: [String?] = [
            Self.tsquery(q.terms), q.withNotes ? "t" : "f", "\(q.before ?? Int64.max)", q.service,
            keys == nil ? "t" : "f", PGConnection.textArray(keys?.map(\.service) ?? []),
            PGConnection.textArray(keys?.map(\.clientId) ?? []), "\(q.limit + 1)",
        ]
        read({ db in
            let r = try db.query("""
                SELECT \(Self.qualifiedMessageColumns), c.service, c.client_id
                FROM messages m JOIN conversations c ON c.id = m.conversation_id
                WHERE m.search_terms @@ $1::tsquery AND m.deleted_at IS NULL AND ($2::boolean OR NOT m.internal)
                  AND m.id < $3::bigint AND ($4::text IS NULL OR c.service = $4)
                  AND ($5::boolean OR (c.service, c.client_id) IN (SELECT * FROM unnest($6::text[], $7::text[])))
                ORDER BY m.id DESC LIMIT $8::integer
                """, params)
            let columns = Self.messageColumns.split(separator: ",").count
            var items: [SearchHit] = []
            for row in 0..<min(r.count, q.limit) {
                let key = ConversationKey(service: r.text(row, columns), clientId: r.text(row, columns + 1))
                let m = Self.message(r, row, key)
                items.append(SearchHit(message: m, snippet: SearchText.snippet(m.text, query: q.terms)))
            }
            return SearchPage(items: items, more: r.count > q.limit)
        }, completion: completion)
    }
}
