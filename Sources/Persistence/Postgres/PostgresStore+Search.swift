import Protocol

// Search on PostgreSQL (docs/protocol.md "Search"). PLACEHOLDER: being built.
extension PostgresStore {
    public func searchMessages(_ q: SearchQuery, completion: @escaping StoreCompletion<SearchPage>) {
        completion(.failure(.unavailable("search is not built yet")))
    }
}
