// The contract's vocabularies (docs/protocol.md "Roles and services"): who may use the hub, what a
// conversation can be about, and the words notifications and presence use. Every module reads
// them from here, so a new service or role is added in one place.

public enum Role: String, Sendable, CaseIterable {
    case admin
    case websiteAgent = "website_agent"
    case marketingAgent = "marketing_agent"
    case client

    public var isAgent: Bool { self == .websiteAgent || self == .marketingAgent }
    /// Agents and admins: who may read and write internal notes and work the queue.
    public var isStaff: Bool { self != .client }

    /// The roles whose users may take (or be told of) a conversation about `service`: admins,
    /// and the agent roles that may be assigned for it.
    public static func eligible(for service: String) -> [Role] {
        eligibleByService[service] ?? eligibleRoles(service)
    }

    /// `eligible` of each service, worked out once: a client's send asks on every message.
    private static let eligibleByService: [String: [Role]] =
        Dictionary(uniqueKeysWithValues: Vocabulary.services.map { ($0, eligibleRoles($0)) })

    private static func eligibleRoles(_ service: String) -> [Role] {
        [.admin] + allCases.filter { $0.mayBeAssigned(for: service) }
    }

    /// The services an agent of this role may be assigned for.
    public func mayBeAssigned(for service: String) -> Bool {
        switch self {
        case .marketingAgent: return service == "marketing" || service == "support" || service == "courses"
        case .websiteAgent: return service == "website" || service == "support" || service == "courses"
        case .admin, .client: return false
        }
    }
}

public enum Vocabulary {
    /// Role names, in the order the contract lists them (and /metrics and /v1/stats print them).
    public static let roles: [String] = Role.allCases.map(\.rawValue)
    /// The services a conversation is about and a token may grant, sorted.
    public static let services: [String] = ["courses", "marketing", "support", "website"]
    public static let serviceSet: Set<String> = Set(services)
    /// The services a notification may come from (the chat services plus the wallet and the platform).
    public static let notificationServices = ["wallet", "marketing", "website", "courses", "support", "platform"]
    public static let notificationCategories = ["payments", "messages", "analytics", "updates"]
    /// A conversation's support-desk statuses (`conversation.status`), the default first.
    public static let conversationStatuses: [String] = ["open", "pending", "resolved"]
    /// The role of a bot user: stored through the bridge, named as the sender of bridge
    /// messages, never holding a socket (no token is ever accepted for it).
    public static let botRole = "bot"
    /// What `presence.status` may set.
    public static let presenceStatuses: Set<String> = ["available", "busy", "away"]
}
