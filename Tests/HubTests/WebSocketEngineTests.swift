import Foundation
import Protocol
import XCTest
@testable import Hub

// The engine's WebSocket behaviour over real sockets, against an in-process hub's echo route.
final class WebSocketEngineTests: XCTestCase {
    var hub: TestHub!

    override func setUpWithError() throws { hub = try TestHub() }
    override func tearDown() { hub.stop() }

    func testTextAndBinaryMessagesAreEchoedAsTheyCame() throws {
        let c = try WSClient(port: hub.port)
        try c.send("héllo")
        let text = try c.readMessage()
        XCTAssertEqual(text.opcode, .text, "a text message comes back as text")
        XCTAssertEqual(text.text, "héllo")
        try c.sendMessage(.binary, [0, 1, 2, 255])
        let bin = try c.readMessage()
        XCTAssertEqual(bin.opcode, .binary, "a binary message comes back as binary")
        XCTAssertEqual(bin.payload, [0, 1, 2, 255])
    }

    func testLargeMessageWithSixtyFourBitLengthRoundTrips() throws {
        let c = try WSClient(port: hub.port)
        let payload = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try c.sendMessage(.binary, payload)
        XCTAssertEqual(try c.readMessage().payload, payload, "a 200 kB message echoes byte for byte")
    }

    func testFragmentedMessageWithInterleavedPingIsReassembled() throws {
        let c = try WSClient(port: hub.port)
        try c.sendFrame(.text, Array("frag".utf8), fin: false)
        try c.sendFrame(.ping, Array("p1".utf8))
        try c.sendFrame(.continuation, Array("mented".utf8), fin: true)
        let pong = try c.readFrame()
        XCTAssertEqual(pong.opcode, .pong, "the ping inside a fragmented message is answered first")
        XCTAssertEqual(pong.payload, Array("p1".utf8), "the pong carries the ping's payload")
        XCTAssertEqual(try c.readMessage().text, "fragmented")
    }

    func testCloseHandshakeEchoesTheCodeAndEndsTheConnection() throws {
        let c = try WSClient(port: hub.port)
        try c.close(code: 1000)
        let reply = try c.readFrame()
        XCTAssertEqual(reply.opcode, .close)
        XCTAssertEqual(reply.closeCode, 1000, "the hub echoes the client's close code")
        XCTAssertTrue(c.socket.waitForEOF(), "the hub closes the TCP connection after the handshake")
    }

    func testUnmaskedClientFrameIsClosedWith1002() throws {
        let c = try WSClient(port: hub.port)
        try c.sendFrame(.text, Array("x".utf8), masked: false)
        XCTAssertEqual(try c.readClose().closeCode, 1002, "an unmasked client frame is a protocol error")
        XCTAssertTrue(c.socket.waitForEOF())
    }

    func testInvalidUTF8IsClosedWith1007() throws {
        let c = try WSClient(port: hub.port)
        try c.sendFrame(.text, [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80])
        XCTAssertEqual(try c.readClose().closeCode, 1007, "a surrogate in text is invalid UTF-8")
    }

    func testReservedBitWithoutNegotiatedExtensionIsClosedWith1002() throws {
        let c = try WSClient(port: hub.port)
        try c.sendFrame(.text, Array("x".utf8), rsv2: true)
        XCTAssertEqual(try c.readClose().closeCode, 1002)
    }

    func testMessageOverTheLimitIsClosedWith1009() throws {
        hub.stop()
        hub = try TestHub(maxMessage: 1000)
        let c = try WSClient(port: hub.port)
        try c.sendMessage(.binary, [UInt8](repeating: 7, count: 1001))
        let close = try c.readClose()
        XCTAssertEqual(close.closeCode, 1009, "a message one byte over --max-message gets 1009")
        XCTAssertFalse(close.closeReason.isEmpty, "the close says why")
        let ok = try WSClient(port: hub.port)
        try ok.sendMessage(.binary, [UInt8](repeating: 7, count: 1000))
        XCTAssertEqual(try ok.readMessage().payload.count, 1000, "a message exactly at the limit is served")
    }

    func testPermessageDeflateIsNegotiatedAndMessagesRoundTripCompressed() throws {
        let c = try WSClient(port: hub.port, extensions: "permessage-deflate; client_max_window_bits")
        XCTAssertTrue(c.deflateNegotiated, "the hub accepts permessage-deflate: \(c.responseHeaders)")
        let text = String(repeating: "Montrose hub compresses this. ", count: 200)
        for _ in 0..<3 { // context takeover across messages
            try c.send(text, compress: true)
            let m = try c.readMessage()
            XCTAssertTrue(m.rsv1, "a long reply is sent compressed")
            XCTAssertEqual(m.text, text)
        }
        try c.send("short", compress: true)
        XCTAssertEqual(try c.readMessage().text, "short")
    }

    func testNoContextTakeoverOfferIsHonoured() throws {
        let c = try WSClient(port: hub.port, extensions: "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        let ext = c.responseHeaders["sec-websocket-extensions"] ?? ""
        XCTAssertTrue(ext.contains("server_no_context_takeover") && ext.contains("client_no_context_takeover"), ext)
        for i in 0..<3 {
            let text = String(repeating: "message \(i) ", count: 100)
            try c.send(text, compress: true)
            XCTAssertEqual(try c.readMessage().text, text)
        }
    }

    func testPingIsAnsweredWithPong() throws {
        let c = try WSClient(port: hub.port)
        try c.sendFrame(.ping, Array("are you there".utf8))
        let f = try c.readFrame()
        XCTAssertEqual(f.opcode, .pong)
        XCTAssertEqual(f.text, "are you there")
    }

    func testOneBrokenClientDoesNotDisturbAnother() throws {
        let good = try WSClient(port: hub.port)
        let bad = try WSClient(port: hub.port)
        try bad.sendFrame(Opcode(3), [1, 2, 3])
        XCTAssertEqual(try bad.readClose().closeCode, 1002)
        try good.send("still here")
        XCTAssertEqual(try good.readText(), "still here")
    }
}
