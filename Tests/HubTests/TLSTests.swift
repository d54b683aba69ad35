import Foundation
import XCTest
@testable import Hub

// wss:// and https:// through OpenSSL memory BIOs.
final class TLSTests: XCTestCase {
    func testWebSocketEchoAndHealthOverTLS() throws {
        let cert = try TestCertificate.make()
        let hub = try TestHub(tls: cert)
        defer { hub.stop() }
        let c = try WSClient(port: hub.port, tls: true, extensions: "permessage-deflate")
        try c.send("secure hello")
        XCTAssertEqual(try c.readText(), "secure hello")
        let big = String(repeating: "x", count: 100_000)
        try c.send(big, compress: true)
        XCTAssertEqual(try c.readText(), big, "a message larger than one TLS record round-trips")
        try c.close()
        XCTAssertEqual(try c.readClose().closeCode, 1000)

        let s = try TestSocket(port: hub.port, tls: true)
        try s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try s.readHTTPResponse().status, 200)
    }

    func testPlainTextClientOnTLSListenerIsDropped() throws {
        let cert = try TestCertificate.make()
        let hub = try TestHub(tls: cert)
        defer { hub.stop() }
        let s = try TestSocket(port: hub.port)
        try s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(s.waitForEOF(), "a plaintext request on the TLS port is not served")
    }

    func testMismatchedKeyIsAStartupError() throws {
        let a = try TestCertificate.make()
        let b = try TestCertificate.make()
        XCTAssertThrowsError(try TLSContext(certificateFile: a.cert, keyFile: b.key)) { error in
            XCTAssertTrue("\(error)".contains("does not match"), "says the key does not match: \(error)")
        }
        XCTAssertThrowsError(try TLSContext(certificateFile: "/nonexistent/cert.pem", keyFile: a.key)) { error in
            XCTAssertTrue("\(error)".contains("cannot read TLS certificate"), "\(error)")
        }
    }

    func testReloadServesTheNewCertificateWithoutDroppingConnections() throws {
        let dir = TestDirectory.make("hub-reload")
        let first = try TestCertificate.make(in: dir, commonName: "first")
        let hub = try TestHub(tls: first)
        defer { hub.stop() }
        let old = try WSClient(port: hub.port, tls: true)
        XCTAssertEqual(old.socket.peerSubject, "/CN=first")
        // The files are replaced in place (as a certificate renewal does), then SIGHUP's reload.
        _ = try TestCertificate.make(in: dir, commonName: "second")
        XCTAssertNil(hub.server.reloadTLS())
        let new = try WSClient(port: hub.port, tls: true)
        XCTAssertEqual(new.socket.peerSubject, "/CN=second", "new connections get the new certificate")
        try old.send("still here")
        XCTAssertEqual(try old.readText(), "still here", "an open connection is not dropped")
        // A broken file keeps the certificate in use.
        try "not a certificate".write(toFile: dir + "/cert.pem", atomically: true, encoding: .utf8)
        XCTAssertNotNil(hub.server.reloadTLS())
        XCTAssertEqual(try WSClient(port: hub.port, tls: true).socket.peerSubject, "/CN=second")
    }
}
