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
        let (client, accepted, _) = try connectAndAccept(listening)
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
        let (client, accepted, _) = try connectAndAccept(listening)
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
        let (client, accepted, _) = try connectAndAccept(listening)
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

    /// A peer's address is kept as bytes and written out when read: as inet_ntop would write it.
    func testAnIPv4PeerReadsAsInetNtopWouldWriteIt() throws {
        let ports: [UInt16] = [0, 7, 80, 443, 9999, 10000, 54321, 65535]
        let addresses: [UInt32] = [0, 0x7F00_0001, 0x7F00_0011, 0x0A00_0A01, 0xC0A8_6401, 0x0102_0304, 0x6463_0A09, 0xFFFF_FFFF]
        for address in addresses {
            for port in ports {
                var a = in_addr(s_addr: address.bigEndian)
                var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                XCTAssertNotNil(inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count)))
                XCTAssertEqual(PeerAddress.ipv4(address, port: port).description, cString(buf) + ":\(port)")
            }
        }
        // And a real accept names its client.
        let listening = try Socket.listen(host: "127.0.0.1", port: 0, reusePort: false, backlog: 8)
        defer { close(listening) }
        let (client, accepted, peer) = try connectAndAccept(listening)
        defer { close(client); close(accepted) }
        var local = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &len) } }
        XCTAssertEqual(peer.description, "127.0.0.1:\(UInt16(bigEndian: local.sin_port))")
        XCTAssertTrue(peer.isLoopback)
    }

    func testAnIPv6PeerReadsInBracketsWithItsPort() throws {
        XCTAssertEqual(PeerAddress(text: "[2001:db8::ff00:42:8329]:8443").description, "[2001:db8::ff00:42:8329]:8443")
        XCTAssertEqual(PeerAddress(sockaddr_storage()).description, "?", "an address of no family the hub knows")
    }

    /// The console's development sign-in trusts loopback peers only, read from the bytes.
    func testLoopbackIsReadFromTheAddressBytes() {
        for text in ["127.0.0.1:1", "127.255.0.9:80", "[::1]:443", "[::ffff:127.0.0.1]:9"] {
            XCTAssertTrue(PeerAddress(text: text).isLoopback, text)
        }
        for text in ["128.0.0.1:1", "126.255.255.255:1", "10.0.0.7:5000", "[::2]:1", "[::]:1", "[1::1]:1",
                     "[::ffff:10.1.2.3]:9", "[::fffe:127.0.0.1]:9", "[2001:db8::1]:443", "?"] {
            XCTAssertFalse(PeerAddress(text: text).isLoopback, text)
        }
    }

    private func connectAndAccept(_ listening: Int32) throws -> (client: Int32, accepted: Int32, peer: PeerAddress) {
        let port = Socket.boundPort(listening)
        let client = try Socket.connect(ipv4: "127.0.0.1", port: port) { _ in }.get().fd
        for _ in 0..<200 {
            switch Socket.accept(listening) {
            case .success(let a?): return (client, a.fd, a.peer)
            case .success(nil): usleep(5_000)
            case .failure(let e): close(client); throw e
            }
        }
        close(client)
        throw SocketError(what: "accept: nothing to accept within a second", errno: ETIMEDOUT)
    }
}
