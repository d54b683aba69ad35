import Foundation
import Synchronization
import XCTest
import Core
@testable import Persistence
import Protocol

// The support desk's part of the Store contract (docs/protocol.md "Support desk"), run by
// SQLiteStoreContractTests and PostgresStoreContractTests like the rest.
extension StoreContractTests {
    var wes: UserRecord { UserRecord(id: "wes", role: "website_agent", name: "Wes") }
    var wendy: UserRecord { UserRecord(id: "wendy", role: "website_agent", name: "Wendy") }

    func note(_ store: any Store, _ text: String, from u: UserRecord) throws -> AppendResult {
        try wait { store.appendMessage(NewMessage(conversation: key, sender: u, text: text, clientMsgId: nil, ts: 2000, isInternal: true), completion: $0) }
    }

    func checkStatusIsSetListedAndReopenedByTheClient() throws {
        let store = try openStore()
        defer { store.close() }
        let fresh = try wait { store.deskState(key, completion: $0) }
        XCTAssertEqual(fresh.status, ConversationStatus(conversation: key), "open and set by nobody before anything happened")
        let set = try wait { store.setStatus(key, "resolved", by: "wes", now: 5, completion: $0) }
        XCTAssertEqual(set, StatusChange(status: ConversationStatus(conversation: key, status: "resolved", by: "wes", at: 5), changed: true))
        let again = try wait { store.setStatus(key, "resolved", by: "admin", now: 6, completion: $0) }
        XCTAssertFalse(again.changed, "the same status again changes nothing")
        XCTAssertEqual(again.status.by, "wes")
        let listed = try wait { store.conversations([key], for: "wes", withNotes: true, completion: $0) }
        XCTAssertEqual(listed.first?.status.status, "resolved")
        // An agent's message leaves it resolved; the client's reopens it.
        XCTAssertNil(try send(store, "closing note", from: wes).reopened)
        let reopened = try send(store, "one more thing")
        XCTAssertEqual(reopened.reopened, ConversationStatus(conversation: key, status: "open", by: "ann", at: 1000))
        XCTAssertEqual(try wait { store.deskState(key, completion: $0) }.status.status, "open")
        XCTAssertNil(try send(store, "and another").reopened, "open already")
        _ = try wait { store.setStatus(key, "pending", by: "wes", now: 7, completion: $0) }
        XCTAssertNil(try send(store, "still pending?").reopened, "only resolved reopens")
        XCTAssertEqual(try wait { store.deskState(key, completion: $0) }.status.status, "pending")
    }

    func checkAClientMessageQueuesAConversationNoAgentServesAndAnAssignmentTakesItOut() throws {
        let store = try openStore()
        defer { store.close() }
        for u in [ann, wes, UserRecord(id: "boss", role: "admin", name: "Boss"), UserRecord(id: "mia", role: "marketing_agent", name: "Mia")] {
            _ = try wait { store.upsertUser(u, now: 1, completion: $0) }
        }
        XCTAssertFalse(try send(store, "note to self?", from: wes).queued, "an agent's message queues nothing")
        // Nobody eligible online: the hub names the roles to tell.
        let first = try wait {
            store.appendMessage(NewMessage(conversation: key, sender: ann, text: "hello?", clientMsgId: "q1", ts: 10,
                                           queueNotifyRoles: ["admin", "website_agent"]), completion: $0)
        }
        XCTAssertTrue(first.queued)
        XCTAssertEqual(Set(first.notifications.map(\.userId)), ["boss", "wes"], "the admin and the website agent are told, not the marketing agent")
        XCTAssertTrue(try wait { store.deskState(key, completion: $0) }.unassigned)
        XCTAssertFalse(try send(store, "anyone?", id: "q2").queued, "queued once, not on every message")
        XCTAssertEqual(try wait { store.queuedConversations(services: ["website"], limit: 10, completion: $0) }, [key])
        XCTAssertEqual(try wait { store.queuedConversations(services: ["marketing"], limit: 10, completion: $0) }, [])
        XCTAssertEqual(try wait { store.conversations([key], for: "boss", withNotes: true, completion: $0) }.first?.unassigned, true)
        _ = try wait { store.setAssignment(Assignment(conversation: key, agentId: "wes"), now: 11, completion: $0) }
        XCTAssertFalse(try wait { store.deskState(key, completion: $0) }.unassigned)
        XCTAssertEqual(try wait { store.queuedConversations(services: ["website"], limit: 10, completion: $0) }, [])
        XCTAssertFalse(try send(store, "thanks", id: "q3").queued, "an agent serves it")
        _ = try wait { store.removeAssignment(key, completion: $0) }
        XCTAssertTrue(try wait { store.deskState(key, completion: $0) }.unassigned, "its client wrote: back in the queue without its agent")
        _ = try wait { store.setStatus(key, "resolved", by: "boss", now: 12, completion: $0) }
        XCTAssertEqual(try wait { store.queuedConversations(services: ["website"], limit: 10, completion: $0) }, [], "a resolved conversation waits for nobody")
    }

    func checkClaimsLetExactlyOneAgentWin() throws {
        let store = try openStore()
        defer { store.close() }
        _ = try send(store, "help")
        let holders = Locked<[String]>([])
        let group = DispatchGroup()
        for agent in ["wes", "wendy", "will", "wade"] {
            group.enter()
            store.claimAssignment(Assignment(conversation: key, agentId: agent), now: 20) { r in
                if case .success(let h) = r { holders.withLock { $0.append(h) } }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        let answers = holders.withLock { $0 }
        XCTAssertEqual(answers.count, 4)
        XCTAssertEqual(Set(answers).count, 1, "every claim answers the one winner: \(answers)")
        let winner = try XCTUnwrap(answers.first)
        XCTAssertEqual(try wait { store.allAssignments(completion: $0) }, [Assignment(conversation: key, agentId: winner)])
        XCTAssertFalse(try wait { store.deskState(key, completion: $0) }.unassigned, "the claim took it out of the queue")
        XCTAssertEqual(try wait { store.claimAssignment(Assignment(conversation: key, agentId: winner), now: 21, completion: $0) }, winner,
                       "claiming one's own again is no conflict")
    }

    func checkNotesAreStoredMarkedAndLeftOutOfAClientsSummary() throws {
        let store = try openStore()
        defer { store.close() }
        _ = try send(store, "my site is down")
        _ = try wait { store.setAssignment(Assignment(conversation: key, agentId: "wes"), now: 1, completion: $0) }
        let n = try note(store, "customer is on the legacy plan", from: wes)
        XCTAssertTrue(n.message.isInternal)
        XCTAssertEqual(n.message.seq, 2, "a note takes the conversation's next seq")
        XCTAssertNil(n.reopened)
        XCTAssertFalse(n.queued)
        let page = try wait { store.messages(key, after: 0, limit: 10, completion: $0) }
        XCTAssertEqual(page.messages.map(\.isInternal), [false, true], "stored marked")
        XCTAssertEqual(try wait { store.messages(key, before: nil, limit: 10, completion: $0) }.messages.last?.isInternal, true)
        let clientPage = try wait { store.messages(key, before: nil, limit: 1, withNotes: false, completion: $0) }
        XCTAssertEqual(clientPage.messages.map(\.text), ["my site is down"], "a client's page counts only what it may read")
        XCTAssertFalse(clientPage.more)
        let client = try wait { store.conversations([key], for: "ann", withNotes: false, completion: $0) }.first
        XCTAssertEqual(client?.lastMessage?.text, "my site is down", "a client's last message is never a note")
        XCTAssertEqual(client?.unread, 0, "a note is not unread for the client")
        let staff = try wait { store.conversations([key], for: "wendy", withNotes: true, completion: $0) }.first
        XCTAssertEqual(staff?.lastMessage?.text, "customer is on the legacy plan")
        XCTAssertEqual(staff?.unread, 2)
    }
}

extension StoreContractTests {
    func checkDeskEventsGiveTheReportItsCyclesAndQueue() throws {
        let store = try openStore()
        defer { store.close() }
        let at = { (ts: Int64, text: String, from: UserRecord, note: Bool) in
            try self.wait { store.appendMessage(NewMessage(conversation: self.key, sender: from, text: text, clientMsgId: nil, ts: ts,
                                                           isInternal: note), completion: $0) }
        }
        _ = try at(10_000, "hello?", ann, false)            // opens a cycle and queues it
        _ = try at(11_000, "anyone?", ann, false)           // neither again
        _ = try wait { store.claimAssignment(Assignment(conversation: key, agentId: "wes"), now: 20_000, completion: $0) }
        _ = try at(25_000, "looking", wes, true)            // a note is no response
        _ = try at(40_000, "fixed it", wes, false)          // the first response: 30 s after it opened
        _ = try wait { store.setStatus(key, "resolved", by: "wes", now: 70_000, completion: $0) }
        _ = try at(80_000, "broken again", ann, false)      // reopens: a second cycle
        let e = try wait { store.supportEvents(from: 0, to: 100_000, service: nil, completion: $0) }
        XCTAssertEqual(e.opened.map(\.ts), [10_000, 80_000])
        XCTAssertEqual(e.opened.first?.firstResponseMs, 30_000)
        XCTAssertEqual(e.opened.first?.responder, "wes")
        XCTAssertNil(e.opened.first?.agent, "nobody served it when it opened")
        XCTAssertEqual(e.opened.last?.agent, "wes")
        XCTAssertNil(e.opened.last?.firstResponseMs, "not answered yet")
        XCTAssertEqual(e.resolved, [.init(conversation: key, agent: "wes", ts: 70_000, resolutionMs: 60_000)])
        XCTAssertEqual(e.queuedAtStart, 0)
        XCTAssertEqual(e.queueChanges.map(\.ts), [10_000, 20_000])
        XCTAssertEqual(e.queueChanges.map(\.delta), [1, -1])
        let later = try wait { store.supportEvents(from: 15_000, to: 100_000, service: "website", completion: $0) }
        XCTAssertEqual(later.queuedAtStart, 1, "queued before the range began")
        XCTAssertEqual(later.opened.count, 1)
        XCTAssertEqual(try wait { store.supportEvents(from: 0, to: 100_000, service: "marketing", completion: $0) }.opened.count, 0)
    }
}
