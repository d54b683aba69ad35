import CLinux
import Dispatch
import Foundation
import Glibc
import Protocol
import XCTest
@testable import Hub

// The slow-consumer verdict judges the reader's socket, not the loop's own lateness. A busy
// turn (in a debug build under load, hundreds of publications from the mailbox, 100–1,500 ms)
// queues frames for every subscriber before the loop writes anything, and a reader's report of
// room (EPOLLOUT) waits in the epoll batch behind that work. Here one loop is held busy on
// purpose (a mailbox job that waits) while publications pile up, over real sockets.
final class StuckVerdictTests: XCTestCase {
    var hub: TestHub!
    override func tearDown() { hub?.stop() }

    static let channel = "conv:website:verdict"
    private var nextSeq: Int64 = 1

    /// A subscriber (small receive window) on the hub's one loop.
    private func subscriber() throws -> ChatClient {
        hub = try TestHub(loops: 1)
        let c = try ChatClient(port: hub.port, token: TestHub.token("verdict-reader", .admin), receiveBuffer: 4_096)
        XCTAssertEqual(try c.result("subscribe", ["channel": .string(Self.channel)])["last_seq"]?.intValue, 0)
        return c
    }

    /// Publishes `count` message pushes of ~250 bytes with the next seqs, as the store's writer does.
    private func publish(_ count: Int) {
        let pad = String(repeating: "v", count: 200)
        for _ in 0..<count {
            let seq = nextSeq
            nextSeq += 1
            hub.server.chat.broker.publish(.push(channel: Self.channel, seq: seq) { w in
                w.key("type"); w.string("message")
                w.key("channel"); w.string(Self.channel)
                w.key("seq"); w.int(seq)
                w.key("text"); w.string(pad)
            })
        }
    }

    /// Holds the loop in one mailbox job until the returned function is called.
    private func holdLoop() -> () -> Void {
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        hub.server.loops[0].execute { _ in
            started.signal()
            release.wait()
        }
        started.wait()
        return { release.signal() }
    }

    /// Reads message pushes until `last`, checking each seq comes once and in order.
    private func readMessages(_ c: ChatClient, through last: Int64, from first: Int64) throws {
        var expected = first
        while expected <= last {
            let m = try c.push("message")
            XCTAssertEqual(m["seq"]?.intValue, expected)
            expected = (m["seq"]?.intValue ?? expected) + 1
        }
    }

    /// Reads what arrives for `seconds` without parsing it (a frame may be cut anywhere), into
    /// the client's inbox, where `push` finds it later.
    private func takeWhatTheKernelHolds(_ c: ChatClient, for seconds: TimeInterval) {
        var bytes = c.ws.socket.pending
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let until = Date().addingTimeInterval(seconds)
        while Date() < until {
            let n = recv(c.ws.socket.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n > 0 { bytes += buffer[0..<n] } else { usleep(1_000) }
        }
        c.ws.socket.pending = bytes
    }

    private var slowConsumerCloses: Int { hub.server.counters.slowConsumerCloses.load(ordering: .relaxed) }

    /// 1,100 publications reach the loop while it is busy and are queued in its next turn before
    /// any write: over the 1,024-frame cap, though the reader's socket has refused nothing.
    func testPushesQueuedInOneBusyTurnDoNotCutAReaderWhoseSocketTakesThem() throws {
        let c = try subscriber()
        let resume = holdLoop()
        publish(1_100)
        resume()
        try readMessages(c, through: 1_100, from: 1)
        XCTAssertEqual(slowConsumerCloses, 0, "a reader that takes what it is sent is not a slow consumer")
        XCTAssertNotNil(try c.result("ping"), "still connected")
    }

    /// The reader's socket refuses a burst, then the loop is busy for 400 ms, during which the
    /// reader takes everything the kernel held and more publications arrive. In the next turn the
    /// mailbox (ready first) queues them before the loop dispatches the reader's EPOLLOUT: over
    /// 256 behind, and refused (by the loop's bookkeeping) for over 250 ms. Its socket takes
    /// output: it is not stuck.
    func testAReaderThatMadeRoomWhileTheLoopWasBusyIsNotCutAsStuck() throws {
        let c = try subscriber()
        publish(100) // ~25 KB: the kernel takes about 10, the rest waits and the socket refuses
        Thread.sleep(forTimeInterval: 0.2)
        let resume = holdLoop()
        let heldAt = Date()
        publish(300)
        takeWhatTheKernelHolds(c, for: 0.1)
        Thread.sleep(until: heldAt.addingTimeInterval(0.4))
        resume()
        try readMessages(c, through: 400, from: 1)
        XCTAssertEqual(slowConsumerCloses, 0, "a reader that made room is not stuck")
        XCTAssertNotNil(try c.result("ping"), "still connected")
    }
}
