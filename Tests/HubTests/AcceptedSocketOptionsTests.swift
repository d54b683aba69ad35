import Glibc
import XCTest
@testable import Hub

// The options accepted connections run with are set once on the listening socket: on this
// kernel an accepted socket inherits them, and where it did not, `apply` sets them itself.
final class AcceptedSocketOptionsTests: XCTestCase {
    func testAnAcceptedSocketInheritsTheListeningSocketsOptions() throws {
        let options = AcceptedSocketOptions(EngineLimits())
        let listening = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false, backlog: 8)
        defer { close(listening) }
        options.apply(to: listening)
        let (client, accepted) = try connectAndAccept(listening)
        defer { close(client); close(accepted) }

        XCTAssertEqual(Socket.option(accepted, Int32(IPPROTO_TCP), TCP_NODELAY).map { $0 != 0 }, true)
        XCTAssertEqual(Socket.option(accepted, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT), Int32(EngineLimits().socketUnsentLowWater))
        // Linux reports SO_SNDBUF doubled.
        XCTAssertEqual(Socket.option(accepted, SOL_SOCKET, SO_SNDBUF), Int32(2 * EngineLimits().socketSendBuffer))
        XCTAssertTrue(options.copied(from: listening, to: accepted))
    }

    func testASocketWithoutTheOptionsIsSeenAndGetsThemItself() throws {
        let options = AcceptedSocketOptions(EngineLimits())
        let listening = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false, backlog: 8)
        defer { close(listening) }
        let (client, accepted) = try connectAndAccept(listening)
        defer { close(client); close(accepted) }
        // The options are set on the listening socket only after this one was accepted.
        options.apply(to: listening)

        XCTAssertFalse(options.copied(from: listening, to: accepted), "expected the check to see a socket without the options")
        options.apply(to: accepted)
        XCTAssertTrue(options.copied(from: listening, to: accepted))
        XCTAssertEqual(Socket.option(accepted, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT), Int32(EngineLimits().socketUnsentLowWater))
    }

    func testEachOptionIsChecked() throws {
        let listening = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false, backlog: 8)
        defer { close(listening) }
        var options = AcceptedSocketOptions(EngineLimits())
        options.apply(to: listening)
        let (client, accepted) = try connectAndAccept(listening)
        defer { close(client); close(accepted) }
        XCTAssertTrue(options.copied(from: listening, to: accepted))

        Socket.setOption(accepted, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT, 8 * 1024)
        XCTAssertFalse(options.copied(from: listening, to: accepted), "expected a different low-water mark to be seen")
        options.apply(to: accepted)
        Socket.setOption(accepted, SOL_SOCKET, SO_SNDBUF, 32 * 1024)
        XCTAssertFalse(options.copied(from: listening, to: accepted), "expected a different send buffer to be seen")
        options.apply(to: accepted)
        Socket.setOption(accepted, Int32(IPPROTO_TCP), TCP_NODELAY, 0)
        XCTAssertFalse(options.copied(from: listening, to: accepted), "expected Nagle's algorithm on to be seen")

        // Options left to the kernel (0) are not checked.
        options.sendBuffer = 0
        options.unsentLowWater = 0
        Socket.setOption(accepted, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        XCTAssertTrue(options.copied(from: listening, to: accepted))
    }

    private func connectAndAccept(_ listening: Int32) throws -> (client: Int32, accepted: Int32) {
        let port = Socket.boundPort(listening)
        let client = try Socket.connect(ipv4: "127.0.0.1", port: port) { _ in }.get().fd
        for _ in 0..<200 {
            switch Socket.accept(listening) {
            case .success(let a?): return (client, a.fd)
            case .success(nil): usleep(5_000)
            case .failure(let e): close(client); throw e
            }
        }
        close(client)
        throw SocketError(what: "accept: nothing to accept within a second", errno: ETIMEDOUT)
    }
}
