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
