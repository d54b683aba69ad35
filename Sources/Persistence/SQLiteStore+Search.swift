import Protocol

// Search on SQLite (docs/protocol.md "Search"). PLACEHOLDER: being built.
extension SQLiteStore {
    /// Indexes (or, with nil, removes) a message's words, inside the caller's transaction.
    static func indexForSearch(_ db: SQLiteConnection, msgId: Int64, conversation: Int64, text: String?) throws {}

    public func searchMessages(_ q: SearchQuery, completion: @escaping StoreCompletion<SearchPage>) {
        completion(.failure(.unavailable("search is not built yet")))
    }
}
