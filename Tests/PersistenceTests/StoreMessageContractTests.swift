import Foundation
import XCTest
import Core
@testable import Persistence
import Protocol

// Edit, delete and attachments in the Store contract (docs/protocol.md "Edit and delete",
// "Attachments"), run by SQLiteStoreContractTests and PostgresStoreContractTests like the rest.
extension StoreContractTests {
    func change(_ seq: Int64, by actor: String = "ann", anyTime: Bool = false, now: Int64 = 2_000,
                windowMs: Int64 = 60_000, withNotes: Bool = true) -> MessageChangeRequest {
        MessageChangeRequest(conversation: key, seq: seq, actor: actor, anyTime: anyTime, now: now, windowMs: windowMs, withNotes: withNotes)
    }

    func checkAnEditKeepsTheOldTextInItsHistoryAndFollowsTheRules() throws {
        let store = try openStore()
        defer { store.close() }
        let m = try send(store, "helo\u{0}world").message // NUL survives the edit history too
        let edited = try wait { store.editMessage(change(m.seq), text: "hello world", completion: $0) }
        guard case .changed(let after, _) = edited else { return XCTFail("\(edited)") }
        XCTAssertEqual(after.text, "hello world")
        XCTAssertEqual(after.editedAt, 2_000)
        XCTAssertEqual(try wait { store.editMessage(change(m.seq), text: "hello world", completion: $0) }, .unchanged(after))
        XCTAssertEqual(try wait { store.editMessage(change(m.seq, by: "wes"), text: "x", completion: $0) }, .notSender)
        XCTAssertEqual(try wait { store.editMessage(change(m.seq, by: "wes", anyTime: true), text: "x", completion: $0) }, .notSender,
                       "nobody edits another's message, whatever the window")
        XCTAssertEqual(try wait { store.editMessage(change(m.seq, now: 1_000 + 60_001), text: "x", completion: $0) }, .windowClosed)
        XCTAssertEqual(try wait { store.editMessage(change(99), text: "x", completion: $0) }, .notFound)
        let page = try wait { store.messages(key, after: 0, limit: 10, completion: $0) }
        XCTAssertEqual(page.messages.first?.text, "hello world")
        XCTAssertEqual(page.messages.first?.editedAt, 2_000)
        let history = try XCTUnwrap(try wait { store.messageEdits(key, seq: m.seq, completion: $0) })
        XCTAssertEqual(history.edits, [MessageEdit(text: "helo\u{0}world", editedAt: 2_000, editor: "ann")])
        XCTAssertNil(try wait { store.messageEdits(key, seq: 42, completion: $0) })
    }

    func checkAMessageTakesABoundedNumberOfEdits() throws {
        let store = try openStore()
        defer { store.close() }
        let m = try send(store, "v0").message
        for n in 1...ContractLimits.maxEditsPerMessage {
            guard case .changed = try wait({ store.editMessage(change(m.seq), text: "v\(n)", completion: $0) }) else {
                return XCTFail("edit \(n) refused")
            }
        }
        XCTAssertEqual(try wait { store.editMessage(change(m.seq), text: "one too many", completion: $0) }, .tooManyEdits)
        let kept = try XCTUnwrap(try wait { store.messageEdits(key, seq: m.seq, completion: $0) })
        XCTAssertEqual(kept.message.text, "v\(ContractLimits.maxEditsPerMessage)")
        XCTAssertEqual(kept.edits.count, ContractLimits.maxEditsPerMessage)
        guard case .changed = try wait({ store.deleteMessage(change(m.seq), completion: $0) }) else { return XCTFail("still deletable") }
    }

    func checkADeleteLeavesATombstoneAndErasesTextAttachmentsAndHistory() throws {
        let store = try openStore()
        defer { store.close() }
        let file = MessageAttachment(url: "https://files.test/a.pdf", name: "a.pdf", size: 10, contentType: "application/pdf")
        let first = try send(store, "one").message
        let m = try wait { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "two", clientMsgId: nil, ts: 1_000,
                                                           attachments: [file]), completion: $0) }.message
        XCTAssertEqual(m.attachments, [file])
        _ = try send(store, "three")
        _ = try wait { store.editMessage(change(m.seq), text: "two!", completion: $0) }
        XCTAssertEqual(try wait { store.deleteMessage(change(m.seq, by: "wes"), completion: $0) }, .notSender)
        XCTAssertEqual(try wait { store.deleteMessage(change(m.seq, now: 1_000 + 60_001), completion: $0) }, .windowClosed)
        let deleted = try wait { store.deleteMessage(change(m.seq, by: "boss", anyTime: true, now: 10_000_000), completion: $0) }
        guard case .changed(let tomb, _) = deleted else { return XCTFail("\(deleted)") }
        XCTAssertTrue(tomb.isDeleted)
        XCTAssertEqual(try wait { store.deleteMessage(change(m.seq), completion: $0) }, .unchanged(tomb), "deleting again changes nothing")
        let page = try wait { store.messages(key, after: 0, limit: 10, completion: $0) }.messages
        XCTAssertEqual(page.map(\.seq), [first.seq, m.seq, m.seq + 1], "the seq stays")
        XCTAssertEqual(page[1].text, "")
        XCTAssertEqual(page[1].attachments, [])
        XCTAssertTrue(page[1].isDeleted)
        XCTAssertFalse(page[0].isDeleted)
        XCTAssertEqual(try wait { store.messageEdits(key, seq: m.seq, completion: $0) }?.edits, [], "the edit history is erased too")
        XCTAssertEqual(try wait { store.editMessage(change(m.seq), text: "back", completion: $0) }, .notFound)
    }

    func checkAnEditRewritesTheNotificationThatQuotedTheMessage() throws {
        let store = try openStore()
        defer { store.close() }
        let sent = try wait { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "call 555-0100", clientMsgId: nil, ts: 1_000),
                                                  notify: ["wes"], completion: $0) }
        let id = try XCTUnwrap(sent.notifications.first?.record.id)
        let edited = try wait { store.editMessage(change(sent.message.seq), text: "call 555-0199", completion: $0) }
        guard case .changed(_, let notes) = edited else { return XCTFail("\(edited)") }
        XCTAssertEqual(notes.map(\.userId), ["wes"])
        XCTAssertEqual(notes.first?.record.id, id)
        XCTAssertEqual(notes.first?.record.body, "call 555-0199")
        XCTAssertEqual(notes.first?.unread.total, 1)
        let listed = try wait { store.notifications(for: "wes", NotificationQuery(), completion: $0) }
        XCTAssertEqual(listed.items.first?.body, "call 555-0199")
        // A later message takes the notification over: editing the earlier one leaves it alone.
        _ = try wait { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "or email", clientMsgId: nil, ts: 1_100),
                                           notify: ["wes"], completion: $0) }
        guard case .changed(_, let none) = try wait({ store.editMessage(change(sent.message.seq, now: 3_000), text: "call me", completion: $0) })
        else { return XCTFail() }
        XCTAssertEqual(none, [])
    }

    func checkAClientNeverReachesANoteByEditOrDelete() throws {
        let store = try openStore()
        defer { store.close() }
        let n = try note(store, "internal", from: wes).message
        XCTAssertEqual(try wait { store.deleteMessage(change(n.seq, by: "ann", withNotes: false), completion: $0) }, .notFound)
        XCTAssertEqual(try wait { store.editMessage(change(n.seq, by: "ann", withNotes: false), text: "x", completion: $0) }, .notFound)
        guard case .changed = try wait({ store.editMessage(change(n.seq, by: "wes"), text: "internal, edited", completion: $0) })
        else { return XCTFail("its author edits it") }
    }
}
