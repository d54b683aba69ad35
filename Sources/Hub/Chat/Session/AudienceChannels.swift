import Protocol

extension Channel {
    /// Per role, the broadcast channels its connections join at auth: 'all', then the role's
    /// own. Built once per process, so every session holds the same array and strings (a
    /// name such as `broadcast:website_agent` is past Swift's 15-byte inline string and would
    /// otherwise be a heap string per connection).
    private static let audienceChannelsByRole: [Role: [String]] =
        Dictionary(uniqueKeysWithValues: Role.allCases.map { ($0, makeAudienceChannels($0)) })

    private static func makeAudienceChannels(_ role: Role) -> [String] {
        [broadcastChannel("all"), broadcastChannel(role.rawValue)]
    }

    static func audienceChannels(of role: Role) -> [String] {
        audienceChannelsByRole[role] ?? makeAudienceChannels(role) // every role is in the map
    }
}
