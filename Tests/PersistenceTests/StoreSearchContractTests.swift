import Foundation
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// Search's part of the Store contract (docs/protocol.md "Search"), the same assertions on both
// stores: words and prefixes, every term required, scope, notes, edits and deletes at once,
// paging, any language. Subclassed per store below, like StoreContractTests (XCTest on Linux
// runs only the tests a class names itself).
class StoreSearchContractTests: StoreContractTests {
    /// The test's store with the search index on or off.
    func openStore(searchIndex: Bool) throws -> any Store & NotificationStore { throw XCTSkip("the contract runs in the subclasses") }

    let bob = UserRecord(id: "bob", role: "client", name: "Bob")
    let bobKey = ConversationKey(service: "website", clientId: "bob")
    let agent = UserRecord(id: "wes", role: "website_agent", name: "Wes")

    func post(_ store: any Store, _ text: String, in k: ConversationKey? = nil, from u: UserRecord? = nil,
              note: Bool = false, ts: Int64 = 1000) throws -> StoredMessage {
        try wait {
            store.appendMessage(NewMessage(conversation: k ?? key, sender: u ?? ann, text: text, clientMsgId: nil, ts: ts,
                                           isInternal: note), completion: $0)
        }.message
    }

    func search(_ store: any Store, _ query: String, scope: SearchQuery.Scope = .everything, service: String? = nil,
                channel: ConversationKey? = nil, before: Int64? = nil, limit: Int = 20, notes: Bool = true) throws -> SearchPage {
        let q = SearchQuery(terms: SearchText.queryTerms(query) ?? [], scope: scope, service: service, channel: channel,
                            before: before, limit: limit, withNotes: notes)
        return try wait { store.searchMessages(q, completion: $0) }
    }

    func texts(_ page: SearchPage) -> [String] { page.items.map(\.message.text) }

    func checkWordsAndPrefixesMatchNewestFirstWithASnippet() throws {
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        _ = try post(store, "Where is my invoice?")
        _ = try post(store, "Two INVOICES attached", from: agent)
        _ = try post(store, "a voice call tomorrow")
        XCTAssertEqual(texts(try search(store, "invoice")), ["Two INVOICES attached", "Where is my invoice?"], "newest first, a longer word too")
        XCTAssertEqual(texts(try search(store, "inv")), ["Two INVOICES attached", "Where is my invoice?"], "a prefix")
        XCTAssertEqual(texts(try search(store, "voice")), ["a voice call tomorrow"], "words that only contain it do not match")
        let hit = try XCTUnwrap(try search(store, "invoice").items.last)
        XCTAssertEqual(hit.snippet, "Where is my <mark>invoice</mark>?")
        XCTAssertEqual(hit.message.conversation, key)
        XCTAssertEqual(hit.message.seq, 1)
        XCTAssertEqual(hit.message.senderName, "Ann")
        XCTAssertEqual(texts(try search(store, "receipt")), [], "no such word")
    }

    func checkEveryTermIsRequired() throws {
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        _ = try post(store, "refund for order 1234")
        _ = try post(store, "refund pending")
        _ = try post(store, "order shipped")
        XCTAssertEqual(texts(try search(store, "refund order")), ["refund for order 1234"])
        XCTAssertEqual(texts(try search(store, "ord ref")), ["refund for order 1234"], "prefixes, any order")
        XCTAssertEqual(texts(try search(store, "refund 12")), ["refund for order 1234"], "digits are words too")
        XCTAssertEqual(texts(try search(store, "refund shipped")), [])
    }

    func checkOnlyTheScopesConversationsAreSearched() throws {
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        _ = try post(store, "my secret plan")
        _ = try post(store, "bob's secret plan", in: bobKey, from: bob)
        let marketing = ConversationKey(service: "marketing", clientId: "ann")
        _ = try post(store, "marketing secret", in: marketing)
        XCTAssertEqual(texts(try search(store, "secret", scope: .conversations([key, marketing]))), ["marketing secret", "my secret plan"])
        XCTAssertEqual(texts(try search(store, "secret", scope: .conversations([bobKey]))), ["bob's secret plan"])
        XCTAssertEqual(texts(try search(store, "secret", scope: .conversations([]))), [], "no conversation, nothing")
        XCTAssertEqual(try search(store, "secret").items.count, 3, "everything")
        XCTAssertEqual(texts(try search(store, "secret", service: "marketing")), ["marketing secret"])
        XCTAssertEqual(texts(try search(store, "secret", channel: bobKey)), ["bob's secret plan"])
        XCTAssertEqual(texts(try search(store, "secret", scope: .conversations([key]), channel: bobKey)), [],
                       "a channel outside the scope finds nothing")
    }

    func checkNotesOnlyWithNotes() throws {
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        _ = try post(store, "customer angry about shipping")
        _ = try post(store, "note: angry customer, refund soon", from: agent, note: true)
        XCTAssertEqual(texts(try search(store, "angry", notes: false)), ["customer angry about shipping"])
        XCTAssertEqual(try search(store, "angry", notes: true).items.map(\.message.isInternal), [true, false])
    }

    func checkAnEditIsFoundByItsNewWordsAtOnce() throws {
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        let m = try post(store, "meet on tuesdya", ts: wallMillis())
        let r = MessageChangeRequest(conversation: key, seq: m.seq, actor: "ann", now: wallMillis(), windowMs: 60_000)
        guard case .changed = try wait({ store.editMessage(r, text: "meet on tuesday", completion: $0) }) else { return XCTFail("edited") }
        XCTAssertEqual(texts(try search(store, "tuesdya")), [], "the old word is gone")
        let hit = try search(store, "tuesday").items
        XCTAssertEqual(hit.map(\.message.text), ["meet on tuesday"])
        XCTAssertNotNil(hit.first?.message.editedAt)
        XCTAssertEqual(hit.first?.snippet, "meet on <mark>tuesday</mark>")
    }

    func checkADeletedMessageIsNeverFound() throws {
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        let m = try post(store, "my password is hunter2", ts: wallMillis())
        _ = try post(store, "hunter is a word")
        let r = MessageChangeRequest(conversation: key, seq: m.seq, actor: "ann", now: wallMillis(), windowMs: 60_000)
        guard case .changed = try wait({ store.deleteMessage(r, completion: $0) }) else { return XCTFail("deleted") }
        XCTAssertEqual(texts(try search(store, "password")), [])
        XCTAssertEqual(texts(try search(store, "hunter")), ["hunter is a word"])
    }

    func checkPagesGoBackWithBeforeAndMore() throws {
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        var ids: [Int64] = []
        for i in 1...25 {
            ids.append(try post(store, "status update \(i)").msgId)
            _ = try post(store, "unrelated \(i)")
        }
        let first = try search(store, "status", limit: 10)
        XCTAssertEqual(first.items.map(\.message.msgId), Array(ids.reversed().prefix(10)))
        XCTAssertTrue(first.more)
        let second = try search(store, "status", before: first.items.last?.message.msgId, limit: 10)
        XCTAssertEqual(second.items.map(\.message.msgId), Array(ids.reversed().dropFirst(10).prefix(10)))
        XCTAssertTrue(second.more)
        let last = try search(store, "status", before: second.items.last?.message.msgId, limit: 10)
        XCTAssertEqual(last.items.map(\.message.msgId), Array(ids.reversed().dropFirst(20)))
        XCTAssertFalse(last.more, "nothing older")
        let scoped = try search(store, "status", scope: .conversations([key]), limit: 25)
        XCTAssertEqual(scoped.items.count, 25)
        XCTAssertFalse(scoped.more, "exactly the page")
    }

    func checkGreekAndRussianMatchWithoutCaseOrAccents() throws {
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        _ = try post(store, "Καλημέρα! Η ΠΑΡΑΓΓΕΛΊΑ σας εστάλη.")
        _ = try post(store, "Привет! Ваш ЗАКАЗ отправлен, ёлки.")
        XCTAssertEqual(texts(try search(store, "παραγγελια")), ["Καλημέρα! Η ΠΑΡΑΓΓΕΛΊΑ σας εστάλη."])
        XCTAssertEqual(try search(store, "ΚΑΛΗΜ").items.first?.snippet, "<mark>Καλημέρα</mark>! Η ΠΑΡΑΓΓΕΛΊΑ σας εστάλη.")
        XCTAssertEqual(texts(try search(store, "заказ")), ["Привет! Ваш ЗАКАЗ отправлен, ёлки."])
        XCTAssertEqual(texts(try search(store, "ЕЛКИ отправ")), ["Привет! Ваш ЗАКАЗ отправлен, ёлки."])
    }

    func checkWithTheIndexOffNothingNewIsIndexedAndDeletesStillErase() throws {
        let on = try openStore(searchIndex: true)
        let indexed = try post(on, "kept while on", ts: wallMillis())
        on.close()
        let store = try openStore(searchIndex: false)
        defer { store.close() }
        _ = try post(store, "kept while off")
        XCTAssertEqual(texts(try search(store, "kept")), ["kept while on"], "a message sent with the index off is not indexed")
        let r = MessageChangeRequest(conversation: key, seq: indexed.seq, actor: "ann", now: wallMillis(), windowMs: 60_000)
        guard case .changed = try wait({ store.deleteMessage(r, completion: $0) }) else { return XCTFail("deleted") }
        XCTAssertEqual(texts(try search(store, "kept")), [], "its entries went with it")
    }
}

final class SQLiteStoreSearchContractTests: StoreSearchContractTests {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    override func openStore() throws -> any Store & NotificationStore { try openStore(searchIndex: true) }
    override func openStore(searchIndex: Bool) throws -> any Store & NotificationStore {
        try SQLiteStore(path: dir + "/hub.sqlite", now: 1, messageWording: MessageNotificationText.wording, searchIndex: searchIndex)
    }

    func testWordsAndPrefixesMatchNewestFirstWithASnippet() throws { try checkWordsAndPrefixesMatchNewestFirstWithASnippet() }
    func testEveryTermIsRequired() throws { try checkEveryTermIsRequired() }
    func testOnlyTheScopesConversationsAreSearched() throws { try checkOnlyTheScopesConversationsAreSearched() }
    func testNotesOnlyWithNotes() throws { try checkNotesOnlyWithNotes() }
    func testAnEditIsFoundByItsNewWordsAtOnce() throws { try checkAnEditIsFoundByItsNewWordsAtOnce() }
    func testADeletedMessageIsNeverFound() throws { try checkADeletedMessageIsNeverFound() }
    func testPagesGoBackWithBeforeAndMore() throws { try checkPagesGoBackWithBeforeAndMore() }
    func testGreekAndRussianMatchWithoutCaseOrAccents() throws { try checkGreekAndRussianMatchWithoutCaseOrAccents() }
    func testWithTheIndexOffNothingNewIsIndexedAndDeletesStillErase() throws { try checkWithTheIndexOffNothingNewIsIndexedAndDeletesStillErase() }

    /// Migration 10 indexes what a store held before it.
    func testTheMigrationIndexesStoredMessages() throws {
        let store = try openStore(searchIndex: true)
        _ = try post(store, "stored before search existed")
        _ = try post(store, "deleted before", ts: wallMillis())
        let r = MessageChangeRequest(conversation: key, seq: 2, actor: "ann", now: wallMillis(), windowMs: 60_000)
        _ = try wait { store.deleteMessage(r, completion: $0) }
        store.close()
        let db = try SQLiteConnection(path: dir + "/hub.sqlite")
        try db.execute("""
            DROP TABLE search_postings; DROP TABLE search_documents; DROP TABLE search_merge; DROP INDEX webhook_events_by_key;
            DELETE FROM schema_migrations WHERE version >= 10
            """)
        let again = try openStore(searchIndex: true)
        defer { again.close() }
        XCTAssertEqual(texts(try search(again, "existed")), ["stored before search existed"])
        XCTAssertEqual(texts(try search(again, "before")), ["stored before search existed"], "not the deleted one")
    }

    /// The test's store as a SQLiteStore whose tail is merged only when the test says.
    func openStoreMergingByHand() throws -> SQLiteStore {
        let store = try XCTUnwrap(try openStore(searchIndex: true) as? SQLiteStore)
        store.searchMerger.pause()
        return store
    }

    func merge(_ store: SQLiteStore, limit: Int = SearchMerger.batch) throws -> Int {
        try wait { store.mergeSearchTail(limit: limit, completion: $0) }
    }

    /// Rows of `table` for the message (a connection of the test's own).
    func indexRows(_ table: String, of m: StoredMessage) throws -> Int {
        let db = try SQLiteConnection(path: dir + "/hub.sqlite", readOnly: true)
        let s = try db.statement("SELECT count(*) FROM \(table) WHERE message_id = ?1")
        try s.bind(.int(m.msgId))
        return try s.step() ? Int(s.int(0)) : -1
    }

    /// A deleted message's words leave the file: the index rows are zeroed (secure_delete),
    /// among enough other entries that the index spans several pages; whether the message's
    /// postings were merged or it was still in the tail.
    func testADeletedMessagesWordsLeaveTheFile() throws { try checkDeletedWordsLeaveTheFile(merged: true) }
    func testADeletedTailMessagesWordsLeaveTheFile() throws { try checkDeletedWordsLeaveTheFile(merged: false) }

    func checkDeletedWordsLeaveTheFile(merged: Bool) throws {
        let store = try openStoreMergingByHand()
        for i in 0..<400 { _ = try post(store, "filler words number \(i) for several index pages of postings") }
        if !merged { _ = try merge(store) }
        let m = try post(store, "the vault code is qzxwvkeyword", ts: wallMillis())
        for i in 0..<400 { _ = try post(store, "more filler \(i) after it, in the same pages and beyond") }
        if merged { _ = try merge(store) }
        XCTAssertEqual(try indexRows("search_postings", of: m) > 0, merged)
        let r = MessageChangeRequest(conversation: key, seq: m.seq, actor: "ann", now: wallMillis(), windowMs: 60_000)
        guard case .changed = try wait({ store.deleteMessage(r, completion: $0) }) else { return XCTFail("deleted") }
        store.close() // checkpoints the WAL into the file
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/hub.sqlite"))
        XCTAssertGreaterThan(bytes.count, 100_000, "the index spans many pages")
        XCTAssertNil(bytes.range(of: Data("qzxwvkeyword".utf8)), "the word is nowhere in the file")
    }

    /// A message is found while its postings wait in the tail, and after the merge wrote them;
    /// a search spans both, newest first, and pages across the watermark.
    func testATailMessageIsFoundBeforeAndAfterTheMerge() throws {
        let store = try openStoreMergingByHand()
        defer { store.close() }
        let old = try post(store, "apple harvest report")
        XCTAssertEqual(try indexRows("search_postings", of: old), 0, "a send writes no postings")
        XCTAssertEqual(texts(try search(store, "appl")), ["apple harvest report"], "found in the tail")
        XCTAssertEqual(try merge(store), 1)
        XCTAssertEqual(try indexRows("search_postings", of: old), 3, "merged: one posting per term")
        XCTAssertEqual(texts(try search(store, "appl")), ["apple harvest report"], "found in the postings")
        _ = try post(store, "apple pie recipe")
        XCTAssertEqual(texts(try search(store, "apple")), ["apple pie recipe", "apple harvest report"], "tail and postings")
        let first = try search(store, "apple", limit: 1)
        XCTAssertEqual(texts(first), ["apple pie recipe"])
        XCTAssertTrue(first.more)
        let second = try search(store, "apple", before: first.items.last?.message.msgId, limit: 1)
        XCTAssertEqual(texts(second), ["apple harvest report"])
        XCTAssertFalse(second.more)
        XCTAssertEqual(texts(try search(store, "apple recipe", scope: .conversations([bobKey]))), [], "the tail keeps to the scope")
        let words = try post(store, "Ёлка ΠΑΡΑΓΓΕΛΊΑ 東京 crème")
        XCTAssertEqual(try merge(store), 2)
        XCTAssertEqual(try indexRows("search_postings", of: words), 5, "every script's words merge")
        for query in ["елка", "παραγγελια", "東", "creme"] { XCTAssertEqual(try search(store, query).items.count, 1, query) }
    }

    /// Edits and deletes of a merged message and of one in the tail act at once; a merged
    /// message's postings change in the edit's transaction.
    func testEditsAndDeletesActOnMergedAndTailMessages() throws {
        let store = try openStoreMergingByHand()
        defer { store.close() }
        let merged = try post(store, "alpha original words", ts: wallMillis())
        XCTAssertEqual(try merge(store), 1)
        let tail = try post(store, "bravo original words", ts: wallMillis())
        for (m, text) in [(merged, "charlie changed"), (tail, "delta changed")] {
            let r = MessageChangeRequest(conversation: key, seq: m.seq, actor: "ann", now: wallMillis(), windowMs: 60_000)
            guard case .changed = try wait({ store.editMessage(r, text: text, completion: $0) }) else { return XCTFail("edited") }
        }
        XCTAssertEqual(try indexRows("search_postings", of: merged), 2, "the merged message's new postings, not the old")
        XCTAssertEqual(try indexRows("search_postings", of: tail), 0, "the tail message stays in the tail")
        XCTAssertEqual(texts(try search(store, "original")), [])
        XCTAssertEqual(texts(try search(store, "alpha")), [])
        XCTAssertEqual(texts(try search(store, "charlie")), ["charlie changed"])
        XCTAssertEqual(texts(try search(store, "delta")), ["delta changed"])
        XCTAssertEqual(texts(try search(store, "changed")), ["delta changed", "charlie changed"])
        XCTAssertEqual(try merge(store), 1, "the edited tail message")
        XCTAssertEqual(texts(try search(store, "changed")), ["delta changed", "charlie changed"])
        let inTail = try post(store, "echo in the tail", ts: wallMillis())
        for m in [merged, inTail] {
            let r = MessageChangeRequest(conversation: key, seq: m.seq, actor: "ann", now: wallMillis(), windowMs: 60_000)
            guard case .changed = try wait({ store.deleteMessage(r, completion: $0) }) else { return XCTFail("deleted") }
            XCTAssertEqual(try indexRows("search_postings", of: m), 0)
            XCTAssertEqual(try indexRows("search_documents", of: m), 0)
        }
        XCTAssertEqual(texts(try search(store, "changed")), ["delta changed"])
        XCTAssertEqual(texts(try search(store, "echo")), [])
        XCTAssertEqual(try merge(store), 0, "nothing left to merge")
    }

    /// A store closed with a tail keeps it (searches read it), and the next start merges it
    /// on its own (the idle timer).
    func testTheTailOutlivesARestartAndIsMergedByItself() throws {
        let first = try openStoreMergingByHand()
        for i in 0..<5 { _ = try post(first, "kept across restarts \(i)") }
        first.close()
        let db = try SQLiteConnection(path: dir + "/hub.sqlite", readOnly: true)
        XCTAssertEqual(try SQLiteStore.searchTailSize(db), 5)
        let store = try openStore(searchIndex: true)
        defer { store.close() }
        XCTAssertEqual(try search(store, "restarts").items.count, 5)
        let deadline = Date().addingTimeInterval(10)
        while try SQLiteStore.searchTailSize(db) > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(try SQLiteStore.searchTailSize(db), 0, "merged by the idle timer")
        XCTAssertEqual(try search(store, "restarts").items.count, 5)
    }

    /// Many messages with common words: each plan (postings, a small scope, a dense walk)
    /// answers the same as checking every message.
    func testEveryPlanAgreesWithCheckingEveryMessage() throws {
        let store = try openStoreMergingByHand()
        defer { store.close() }
        let words = ["alpha", "beta", "gamma", "delta", "rare"]
        var all: [(StoredMessage, ConversationKey)] = []
        for i in 0..<600 {
            let k = ConversationKey(service: "website", clientId: "c\(i % 7)")
            let text = (0..<3).map { j in words[(i * (j + 3) + j) % (i % 50 == 0 ? 5 : 4)] }.joined(separator: " ")
            let sender = UserRecord(id: k.clientId, role: "client", name: "C")
            all.append((try post(store, text, in: k, from: sender), k))
        }
        let db = try SQLiteConnection(path: dir + "/hub.sqlite", readOnly: true)
        // (commonTerm, walkableScope, denseWalkBudget): postings or a small scope; every term
        // common with a walkable scope; a dense walk; a dense walk that runs out and falls back.
        let plans = [(10_000, 50_000, 200_000), (3, 50_000, 200_000), (3, 0, 200_000), (3, 0, 40)]
        // All in the tail, part of it merged (a search spans both), all merged.
        for merged in [0, 250, 600] {
            if merged > 0 { _ = try merge(store, limit: merged - (merged == 600 ? 250 : 0)) }
            XCTAssertEqual(try SQLiteStore.searchTailSize(db), 600 - merged)
            try compare(store, db, all, plans, tail: 600 - merged)
        }
    }

    private func compare(_ store: SQLiteStore, _ db: SQLiteConnection, _ all: [(StoredMessage, ConversationKey)],
                         _ plans: [(Int, Int, Int)], tail: Int) throws {
        for query in ["alpha", "al beta", "rare", "gamma delta", "d", "alpha rare"] {
            let terms = SearchText.queryTerms(query) ?? []
            for scope: SearchQuery.Scope in [.everything, .conversations([ConversationKey(service: "website", clientId: "c3")])] {
                let expected = Array(all.filter { m, k in
                    SearchText.matches(text: m.text, query: terms) && { if case .conversations(let l) = scope { l.contains(k) } else { true } }()
                }.map(\.0.msgId).reversed().prefix(50))
                let got = try search(store, query, scope: scope, limit: 50).items.map(\.message.msgId)
                XCTAssertEqual(got, expected, "\(query) in \(scope), tail \(tail)")
                for plan in plans {
                    var s = SQLiteSearch(db: db, query: SearchQuery(terms: terms, scope: scope, limit: 50, withNotes: true))
                    (s.commonTerm, s.walkableScope, s.denseWalkBudget) = plan
                    XCTAssertEqual(try s.run().items.map(\.message.msgId), expected, "\(query) in \(scope) with \(plan), tail \(tail)")
                    db.resetStatements()
                }
            }
        }
    }
}

final class PostgresStoreSearchContractTests: StoreSearchContractTests {
    var schema: TestPGSchema!

    override func setUpWithError() throws { schema = try TestPGSchema() }
    override func tearDown() { schema?.drop() }

    override func openStore() throws -> any Store & NotificationStore { try openStore(searchIndex: true) }
    override func openStore(searchIndex: Bool) throws -> any Store & NotificationStore {
        try PostgresStore(url: schema.url, now: 1, messageWording: MessageNotificationText.wording, searchIndex: searchIndex)
    }

    func testWordsAndPrefixesMatchNewestFirstWithASnippet() throws { try checkWordsAndPrefixesMatchNewestFirstWithASnippet() }
    func testEveryTermIsRequired() throws { try checkEveryTermIsRequired() }
    func testOnlyTheScopesConversationsAreSearched() throws { try checkOnlyTheScopesConversationsAreSearched() }
    func testNotesOnlyWithNotes() throws { try checkNotesOnlyWithNotes() }
    func testAnEditIsFoundByItsNewWordsAtOnce() throws { try checkAnEditIsFoundByItsNewWordsAtOnce() }
    func testADeletedMessageIsNeverFound() throws { try checkADeletedMessageIsNeverFound() }
    func testPagesGoBackWithBeforeAndMore() throws { try checkPagesGoBackWithBeforeAndMore() }
    func testGreekAndRussianMatchWithoutCaseOrAccents() throws { try checkGreekAndRussianMatchWithoutCaseOrAccents() }
    func testWithTheIndexOffNothingNewIsIndexedAndDeletesStillErase() throws { try checkWithTheIndexOffNothingNewIsIndexedAndDeletesStillErase() }

    /// Schema version 11 indexes what a store held before it.
    func testTheSchemaVersionIndexesStoredMessages() throws {
        let store = try openStore(searchIndex: true)
        _ = try post(store, "stored before search existed")
        store.close()
        let db = try schema.connect()
        _ = try db.query("UPDATE messages SET search_terms = NULL")
        try PostgresStore.indexStoredMessages(db)
        db.close()
        let again = try openStore(searchIndex: true)
        defer { again.close() }
        XCTAssertEqual(texts(try search(again, "existed")), ["stored before search existed"])
    }
}
