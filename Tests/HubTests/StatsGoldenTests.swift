import Foundation
import Metrics
import XCTest
@testable import Persistence
@testable import Bridge
@testable import Hub

// The exact bytes of GET /v1/stats and /metrics: what dashboards and scrapers parse. Values are
// fixed where the test controls them and masked where a live hub chooses them.
final class StatsGoldenTests: XCTestCase {
    /// Every run of digits as 0: the shape, key order and punctuation stay.
    private func masked(_ text: String) -> String {
        text.replacingOccurrences(of: "[0-9]+", with: "0", options: .regularExpression)
    }

    func testStatsJSONKeepsItsKeysOrderAndShape() throws {
        let hub = try TestHub()
        defer { hub.stop() }
        let stats = try hub.bridge.get("/v1/stats")
        XCTAssertEqual(stats.status, 200, stats.text)
        XCTAssertEqual(masked(stats.text), #"""
            {"connections":0,"websockets":0,"users_online":0,"agents_online":0,"online_by_role":{"admin":0,"website_agent":0,"marketing_agent":0,"client":0},"messages_stored":0,"notifications_stored":0,"messages_total":0,"notifications_total":0,"users_by_role":{"admin":0,"website_agent":0,"marketing_agent":0,"client":0},"outbox":{"pending":0,"sent":0,"failed":0,"skipped":0,"smtp_configured":false},"writer":{"batches":0,"jobs":0,"largest_batch":0,"queued":0,"checkpoints":0,"writer_checkpoints":0},"days":[]}
            """#)
    }

    func testMetricsTextUpToTheHistogramsIsByteForByteTheSame() throws {
        let text = HubMetrics().prometheus(live: LiveStats(connections: 3, webSockets: 2, onlineByRole: ["client": 1, "admin": 1],
                                                           slowConsumerCloses: 4),
                                           store: SQLiteStore.statistics(WriterStatsSnapshot(batches: 11, jobs: 22, largestBatch: 3, queued: 4,
                                                                                             checkpoints: 5, writerCheckpoints: 6)))
        let end = try XCTUnwrap(text.range(of: "# HELP montrose_op_seconds "), text)
        XCTAssertEqual(String(text[..<end.lowerBound]), #"""
            # HELP montrose_connections Open TCP connections on both listeners.
            # TYPE montrose_connections gauge
            montrose_connections 3
            # HELP montrose_websockets Open WebSocket connections.
            # TYPE montrose_websockets gauge
            montrose_websockets 2
            # HELP montrose_slow_consumer_closes_total Connections closed with 4009: unsent output over its cap.
            # TYPE montrose_slow_consumer_closes_total counter
            montrose_slow_consumer_closes_total 4
            # HELP montrose_users_online Users with an authenticated connection, by role.
            # TYPE montrose_users_online gauge
            montrose_users_online{role="admin"} 1
            montrose_users_online{role="website_agent"} 0
            montrose_users_online{role="marketing_agent"} 0
            montrose_users_online{role="client"} 1
            # HELP montrose_messages_stored_total Chat messages stored.
            # TYPE montrose_messages_stored_total counter
            montrose_messages_stored_total 0
            # HELP montrose_notifications_stored_total Notifications stored (one per recipient; a broadcast counts once).
            # TYPE montrose_notifications_stored_total counter
            montrose_notifications_stored_total 0
            # HELP montrose_notifications_pushed_total Notification pushes handed to live connections.
            # TYPE montrose_notifications_pushed_total counter
            montrose_notifications_pushed_total 0
            # HELP montrose_broadcasts_total Broadcasts stored.
            # TYPE montrose_broadcasts_total counter
            montrose_broadcasts_total 0
            # HELP montrose_mails_sent_total Mails accepted by the SMTP server.
            # TYPE montrose_mails_sent_total counter
            montrose_mails_sent_total 0
            # HELP montrose_mails_failed_total Mails given up on (permanent failure or too many attempts).
            # TYPE montrose_mails_failed_total counter
            montrose_mails_failed_total 0
            # HELP montrose_outbox_pending Mails waiting in the outbox.
            # TYPE montrose_outbox_pending gauge
            montrose_outbox_pending 0
            # HELP montrose_auth_failures_total Refused WebSocket authentications.
            # TYPE montrose_auth_failures_total counter
            montrose_auth_failures_total 0
            # HELP montrose_writer_batches_total Transactions committed by the database writer.
            # TYPE montrose_writer_batches_total counter
            montrose_writer_batches_total 11
            # HELP montrose_writer_jobs_total Jobs run by the database writer.
            # TYPE montrose_writer_jobs_total counter
            montrose_writer_jobs_total 22
            # HELP montrose_writer_largest_batch Most jobs in one writer transaction so far.
            # TYPE montrose_writer_largest_batch gauge
            montrose_writer_largest_batch 3
            # HELP montrose_writer_queue Jobs waiting for the database writer.
            # TYPE montrose_writer_queue gauge
            montrose_writer_queue 4
            # HELP montrose_db_checkpoints_total WAL checkpoints, by who ran them: the checkpointer thread, or the writer starting the WAL over past its cap.
            # TYPE montrose_db_checkpoints_total counter
            montrose_db_checkpoints_total{by="checkpointer"} 5
            montrose_db_checkpoints_total{by="writer"} 6

            """#)
        XCTAssertTrue(text.hasSuffix("\n"))
    }
}
