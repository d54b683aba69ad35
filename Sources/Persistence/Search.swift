import Protocol

// What a search asks of a store and what it answers (docs/protocol.md "Search"). Who may read
// what is decided by the hub and passed in as `scope`; the store only filters by it.

public struct SearchQuery: Sendable, Equatable {
    public enum Scope: Sendable, Equatable {
        /// Admins and the backend: every conversation.
        case everything
        /// The conversations the caller may read (a client's own, an agent's assigned).
        case conversations([ConversationKey])
    }
    /// The query's words, normalised by `SearchText.terms`; each must match a word of the
    /// message (as a word or as its beginning).
    public var terms: [String]
    public var scope: Scope
    public var service: String?
    public var channel: ConversationKey?
    /// Only messages with a smaller msg_id (the next page).
    public var before: Int64?
    public var limit: Int
    /// Internal notes are searched too (agents and admins).
    public var withNotes: Bool
    public init(terms: [String], scope: Scope, service: String? = nil, channel: ConversationKey? = nil,
                before: Int64? = nil, limit: Int = ContractLimits.defaultSearchPage, withNotes: Bool) {
        self.terms = terms
        self.scope = scope
        self.service = service
        self.channel = channel
        self.before = before
        self.limit = limit
        self.withNotes = withNotes
    }
}

public struct SearchHit: Sendable, Equatable {
    public var message: StoredMessage
    /// Part of the text around the matches, the matched words marked (docs/protocol.md "Search").
    public var snippet: String
    public init(message: StoredMessage, snippet: String) {
        self.message = message
        self.snippet = snippet
    }
}

extension JSONWriter {
    /// `items, more`: a search's answer, the same for the op and the bridge.
    public mutating func searchPageFields(_ page: SearchPage) {
        key("items"); beginArray()
        for hit in page.items { searchItem(hit.message, snippet: hit.snippet) }
        endArray()
        key("more"); bool(page.more)
    }
}

public struct SearchPage: Sendable, Equatable {
    /// Newest first.
    public var items: [SearchHit]
    public var more: Bool
    public init(items: [SearchHit], more: Bool) {
        self.items = items
        self.more = more
    }
}

/// Why a user may not search where asked (docs/protocol.md "Search").
public enum SearchScopeRefusal: Error, Sendable, Equatable {
    /// The channel is not a conversation's.
    case notConversation
    /// The user may not read the channel.
    case forbidden
}
