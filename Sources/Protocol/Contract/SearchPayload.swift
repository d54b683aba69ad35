// A search result as the `search` op and GET /v1/search render it (docs/protocol.md "Search").
extension JSONWriter {
    /// `{channel, seq, msg_id, from {id, role, name}, ts, snippet}`, and `internal: true` for a note.
    public mutating func searchItem(_ m: StoredMessage, snippet: String) {
        beginObject()
        messageHeadFields(m)
        key("ts"); int(m.ts)
        key("snippet"); string(snippet)
        if m.isInternal { key("internal"); bool(true) }
        endObject()
    }
}
