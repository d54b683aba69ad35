import XCTest
@testable import Protocol

// The contract's pure rules: channel names, who may use a channel, and the param reader the
// bridge and the WebSocket ops share.
final class ContractTests: XCTestCase {
    func testChannelNamesParseOnlyInTheirGrammar() {
        XCTAssertEqual(Channel("user:ann.b@x-1"), .user("ann.b@x-1"))
        XCTAssertEqual(Channel("conv:website:ann"), .conversation(ConversationKey(service: "website", clientId: "ann")))
        XCTAssertEqual(Channel("conv:website:ann")?.name, "conv:website:ann")
        for bad in ["user:", "user:a b", "conv:website", "conv:wallet:ann", "conv:website:", "conv:website:a:b",
                    "broadcast:all", Channel.broadcastChannel("admin"), "USER:ann", "user:" + String(repeating: "a", count: 65)] {
            XCTAssertNil(Channel(bad), bad)
        }
    }

    /// The grammar as first written (split on the first colon after `conv:`), against which
    /// the single-pass parser is compared on generated names.
    private func referenceChannel(_ name: String) -> Channel? {
        if name.hasPrefix("user:") {
            let id = String(name.dropFirst(5))
            return UserID.isValid(id) ? .user(id) : nil
        }
        guard name.hasPrefix("conv:") else { return nil }
        let parts = name.dropFirst(5).split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, Vocabulary.serviceSet.contains(String(parts[0])), UserID.isValid(String(parts[1])) else { return nil }
        return .conversation(ConversationKey(service: String(parts[0]), clientId: String(parts[1])))
    }

    func testChannelParserAgreesWithTheSplitDefinition() {
        for bad in ["conv:websitex:ann", "conv::ann", "conv:web:ann", "conv:website", "conv:", "convo:website:ann", "user"] {
            XCTAssertNil(Channel(bad), bad)
        }
        let pieces = ["conv:", "user:", ":", "website", "support", "courses", "marketing", "web", "ann", "a.b@c-d", "é", " ", "x"]
        var rng = SystemRandomNumberGenerator()
        var parsed = 0
        for _ in 0..<20_000 {
            let name = (0..<Int.random(in: 1...5, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let got = Channel(name)
            XCTAssertEqual(got, referenceChannel(name), name)
            if got != nil { parsed += 1; XCTAssertEqual(got?.name, name) }
        }
        XCTAssertGreaterThan(parsed, 100, "the generated names reach the accepted grammar")
    }

    func testDisplayNamesRefuseControlCharactersAsciiOrNot() {
        let pieces = ["Ann", " ", "é", "\u{7F}", "\t", "\u{85}", "\u{0}", "~", "李", "\u{200B}", "x"]
        for _ in 0..<5_000 {
            let name = (0..<Int.random(in: 1...6)).map { _ in pieces.randomElement()! }.joined()
            let expected = DisplayName.hasValidLength(name)
                && !name.unicodeScalars.contains { $0.properties.generalCategory == .control }
            XCTAssertEqual(DisplayName.isValid(name), expected, name.debugDescription)
        }
        XCTAssertFalse(DisplayName.isValid("Ann\u{7F}"), "DEL is a control character")
        XCTAssertFalse(DisplayName.isValid("Ann\u{85}"), "so is NEL, outside ASCII")
        XCTAssertTrue(DisplayName.isValid("Ann ~ Lee"))
    }

    func testEligibleRolesPerService() {
        XCTAssertEqual(Role.eligible(for: "website"), [.admin, .websiteAgent])
        XCTAssertEqual(Role.eligible(for: "marketing"), [.admin, .marketingAgent])
        XCTAssertEqual(Role.eligible(for: "support"), [.admin, .websiteAgent, .marketingAgent])
        XCTAssertEqual(Role.eligible(for: "wallet"), [.admin], "a service outside the vocabulary: admins only")
    }

    func testAccessByRoleServiceAndAssignment() {
        let website = Channel.conversation(ConversationKey(service: "website", clientId: "ann"))
        let marketing = Channel.conversation(ConversationKey(service: "marketing", clientId: "ann"))
        func access(_ id: String, _ role: Role, _ channel: Channel, agent: String? = nil, services: [String]? = nil) -> Access {
            .of(userID: id, role: role, services: services, channel: channel, assignedAgent: agent)
        }
        XCTAssertEqual(access("ann", .client, .user("ann")), .participant)
        XCTAssertEqual(access("ann", .client, .user("bob")), .denied)
        XCTAssertEqual(access("ann", .client, website), .participant)
        XCTAssertEqual(access("ann", .client, website, services: ["marketing"]), .denied, "a service the token does not grant")
        XCTAssertEqual(access("bob", .client, website), .denied)
        XCTAssertEqual(access("wes", .websiteAgent, website, agent: "wes"), .participant)
        XCTAssertEqual(access("wes", .websiteAgent, website, agent: "wendy"), .denied)
        XCTAssertEqual(access("wes", .websiteAgent, website), .denied, "unassigned")
        XCTAssertEqual(access("wes", .websiteAgent, marketing, agent: "wes"), .denied, "a service the role may not serve")
        XCTAssertEqual(access("root", .admin, website), .observer)
        XCTAssertEqual(access("root", .admin, website, agent: "root"), .participant)
        XCTAssertEqual(access("root", .admin, .user("ann")), .denied)
    }

    func testParamsRefuseWithTheFieldAndTheRule() {
        let p = Params<ParamError>(object: ["title": .string(""), "audience": .string("nobody"), "n": .string("1")])
        XCTAssertThrowsError(try p.requiredString("title", max: 10)) {
            XCTAssertEqual($0 as? ParamError, ParamError(message: "title: must not be empty"))
        }
        XCTAssertThrowsError(try p.choice("audience", ["all", "client"])) {
            XCTAssertEqual($0 as? ParamError, ParamError(message: "audience: must be one of all, client"))
        }
        XCTAssertThrowsError(try p.int("n", 1...5)) { XCTAssertEqual($0 as? ParamError, ParamError(message: "n: must be an integer")) }
        XCTAssertNil(try p.string("missing", required: false, max: 10))
    }

    func testANotificationQueryReadsNumbersOrTextAndRefusesTheRest() throws {
        func read(_ params: JSONObject) throws(ParamError) -> NotificationQuery {
            try NotificationQuery.read { name throws(ParamError) in params[name] }
        }
        XCTAssertEqual(try read([:]), NotificationQuery(limit: 50))
        XCTAssertEqual(try read(["before": .string("9"), "limit": .int(10), "service": .string("wallet"), "unread_only": .string("1")]),
                       NotificationQuery(before: 9, limit: 10, service: "wallet", unreadOnly: true))
        XCTAssertThrowsError(try read(["limit": .int(101)])) {
            XCTAssertEqual(($0 as? ParamError)?.message, "limit must be an integer from 1 to 100")
        }
        XCTAssertThrowsError(try read(["unread_only": .string("yes")])) {
            XCTAssertEqual(($0 as? ParamError)?.message, "unread_only must be true or false")
        }
    }
}
