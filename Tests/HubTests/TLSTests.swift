import COpenSSL
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

    // MARK: the profile (Mozilla "intermediate"): TLS 1.3, and TLS 1.2 with ECDHE and AEAD only

    func testTLS12TakesOnlyECDHEWithAEADSuites() throws {
        let hub = try TestHub(tls: try TestCertificate.make(rsa: true))
        defer { hub.stop() }
        // CBC (with and without ECDHE), RSA key exchange (no forward secrecy, even with GCM), DHE.
        for refused in ["AES128-SHA", "AES256-SHA256", "AES128-GCM-SHA256", "AES256-GCM-SHA384",
                        "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-RSA-AES128-SHA256",
                        "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-CHACHA20-POLY1305"] {
            XCTAssertNil(try negotiate(hub.port, tls12(refused)), "\(refused) is refused in the handshake")
        }
        for agreed in ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"] {
            let got = try negotiate(hub.port, tls12(agreed))
            XCTAssertEqual(got?.version, "TLSv1.2", agreed)
            XCTAssertEqual(got?.cipher, agreed)
        }

        let ec = try TestHub(tls: try TestCertificate.make())
        defer { ec.stop() }
        for refused in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"] {
            XCTAssertNil(try negotiate(ec.port, tls12(refused)), "\(refused) is refused in the handshake")
        }
        for agreed in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"] {
            XCTAssertEqual(try negotiate(ec.port, tls12(agreed))?.cipher, agreed)
        }
    }

    func testTLS13IsServedAndTLS10And11AreNot() throws {
        let hub = try TestHub(tls: try TestCertificate.make(rsa: true))
        defer { hub.stop() }
        for suite in ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"] {
            let got = try negotiate(hub.port, TLSOffer(versions: (TLS1_3_VERSION, TLS1_3_VERSION), suites: suite))
            XCTAssertEqual(got?.version, "TLSv1.3", suite)
            XCTAssertEqual(got?.cipher, suite)
        }
        XCTAssertEqual(try negotiate(hub.port, TLSOffer())?.version, "TLSv1.3", "a client offering everything gets TLS 1.3")
        for old in [TLS1_VERSION, TLS1_1_VERSION] {
            XCTAssertNil(try negotiate(hub.port, TLSOffer(versions: (old, old))), "TLS 1.\(old - TLS1_VERSION) is refused")
        }
        // Key exchange groups: X25519, P-256 and P-384; not P-521, X448 or finite-field groups.
        for group in ["X25519", "P-256", "P-384"] {
            XCTAssertNotNil(try negotiate(hub.port, TLSOffer(groups: group)), "TLS 1.3 with \(group)")
            XCTAssertNotNil(try negotiate(hub.port, TLSOffer(versions: (TLS1_2_VERSION, TLS1_2_VERSION), groups: group)),
                            "TLS 1.2 with \(group)")
        }
        for group in ["P-521", "X448", "ffdhe2048"] {
            XCTAssertNil(try negotiate(hub.port, TLSOffer(groups: group)), "TLS 1.3 with only \(group) is refused")
        }
        XCTAssertNil(try negotiate(hub.port, TLSOffer(versions: (TLS1_2_VERSION, TLS1_2_VERSION), groups: "P-521")),
                     "TLS 1.2 with only P-521 is refused")
    }

    /// The server's order (AES-128-GCM first), except that a client preferring ChaCha20 (one
    /// without AES instructions) gets it.
    func testServerOrderPrefersAES128GCMUnlessTheClientPrefersChaCha20() throws {
        let hub = try TestHub(tls: try TestCertificate.make(rsa: true))
        defer { hub.stop() }
        XCTAssertEqual(try negotiate(hub.port, tls12("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"))?.cipher,
                       "ECDHE-RSA-AES128-GCM-SHA256")
        XCTAssertEqual(try negotiate(hub.port, tls12("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"))?.cipher,
                       "ECDHE-RSA-CHACHA20-POLY1305")
        XCTAssertEqual(try negotiate(hub.port, tls12("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"))?.cipher,
                       "ECDHE-RSA-AES256-GCM-SHA384")
        XCTAssertEqual(try negotiate(hub.port, TLSOffer(suites: "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"))?.cipher,
                       "TLS_AES_128_GCM_SHA256")
        XCTAssertEqual(try negotiate(hub.port, TLSOffer(suites: "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"))?.cipher,
                       "TLS_CHACHA20_POLY1305_SHA256")
    }

    func testReloadedContextKeepsTheProfile() throws {
        let dir = TestDirectory.make("hub-reload-profile")
        let hub = try TestHub(tls: try TestCertificate.make(in: dir, commonName: "first", rsa: true))
        defer { hub.stop() }
        _ = try TestCertificate.make(in: dir, commonName: "second", rsa: true)
        XCTAssertNil(hub.server.reloadTLS())
        XCTAssertEqual(try TestSocket(port: hub.port, tls: true).peerSubject, "/CN=second", "the reload took")
        for refused in ["AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"] {
            XCTAssertNil(try negotiate(hub.port, tls12(refused)), "after SIGHUP's reload \(refused) is still refused")
        }
        XCTAssertNil(try negotiate(hub.port, TLSOffer(versions: (TLS1_1_VERSION, TLS1_1_VERSION))))
        XCTAssertNil(try negotiate(hub.port, TLSOffer(groups: "P-521")))
        XCTAssertEqual(try negotiate(hub.port, tls12("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"))?.cipher,
                       "ECDHE-RSA-AES128-GCM-SHA256", "and the server's order")
        XCTAssertEqual(try negotiate(hub.port, TLSOffer())?.version, "TLSv1.3")
    }

    // MARK: Strict-Transport-Security

    func testHSTSOnEveryHTTPSAnswerByDefault() throws {
        let hub = try TestHub(tls: try TestCertificate.make())
        defer { hub.stop() }
        for path in ["/healthz", "/", "/no-such-path", "/ws"] {
            let s = try TestSocket(port: hub.port, tls: true)
            try s.write("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = try s.readHTTPResponse()
            XCTAssertEqual(r.headers["strict-transport-security"], "max-age=63072000", "\(path) (\(r.status))")
        }
        // Refused by the parser before any route.
        let s = try TestSocket(port: hub.port, tls: true)
        try s.write("GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        let bad = try s.readHTTPResponse()
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(bad.headers["strict-transport-security"], "max-age=63072000", "an error answer has it too")
        // Never on the bridge, even when the public listener serves TLS.
        XCTAssertNil(try hub.bridge.get("/healthz").headers["strict-transport-security"])
    }

    func testHSTSMaxAgeIsConfigurableAndZeroTurnsItOff() throws {
        let cert = try TestCertificate.make()
        for (maxAge, expected) in [(600, "max-age=600"), (0, nil)] as [(Int, String?)] {
            let hub = try TestHub(tls: cert) { $0.hstsMaxAge = maxAge }
            defer { hub.stop() }
            let s = try TestSocket(port: hub.port, tls: true)
            try s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(try s.readHTTPResponse().headers["strict-transport-security"], expected, "--hsts-max-age \(maxAge)")
        }

        func parse(_ args: [String], _ env: [String: String] = [:]) throws -> Configuration {
            try Configuration.parse(args, environment: env)
        }
        XCTAssertEqual(try parse([]).hstsMaxAge, 63_072_000)
        XCTAssertEqual(try parse(["--hsts-max-age", "600"]).hstsMaxAge, 600)
        XCTAssertEqual(try parse(["--hsts-max-age=0"]).hstsMaxAge, 0)
        XCTAssertEqual(try parse([], ["MONTROSE_HSTS_MAX_AGE": "31536000"]).hstsMaxAge, 31_536_000)
        XCTAssertEqual(try parse(["--hsts-max-age", "5"], ["MONTROSE_HSTS_MAX_AGE": "7"]).hstsMaxAge, 5, "the flag wins")
        XCTAssertThrowsError(try parse(["--hsts-max-age", "-1"])) { XCTAssertTrue("\($0)".contains("--hsts-max-age"), "\($0)") }
        XCTAssertThrowsError(try parse([], ["MONTROSE_HSTS_MAX_AGE": "two years"])) {
            XCTAssertTrue("\($0)".contains("MONTROSE_HSTS_MAX_AGE"), "\($0)")
        }
        XCTAssertTrue(Configuration.usage.contains("--hsts-max-age"))
    }

    func testNoHSTSOverPlainHTTP() throws {
        let hub = try TestHub()
        defer { hub.stop() }
        let s = try TestSocket(port: hub.port)
        try s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try s.readHTTPResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertNil(r.headers["strict-transport-security"])
        XCTAssertNil(try hub.bridge.get("/healthz").headers["strict-transport-security"])
    }
}

/// What a test TLS client offers: protocol versions, TLS 1.2 cipher list, TLS 1.3 suites and
/// key exchange groups (nil: OpenSSL's defaults). It runs at security level 0, so it can offer
/// what a current OpenSSL would not (TLS 1.0, plain RSA key exchange).
private struct TLSOffer {
    var versions: (Int32, Int32) = (TLS1_VERSION, TLS1_3_VERSION)
    var ciphers: String?
    var suites: String?
    var groups: String?
}

private let TLS1_VERSION = montrose_TLS1_VERSION()
private let TLS1_1_VERSION = montrose_TLS1_1_VERSION()
private let TLS1_2_VERSION = montrose_TLS1_2_VERSION()
private let TLS1_3_VERSION = montrose_TLS1_3_VERSION()

/// A TLS 1.2 client offering exactly `ciphers`.
private func tls12(_ ciphers: String) -> TLSOffer {
    TLSOffer(versions: (TLS1_2_VERSION, TLS1_2_VERSION), ciphers: ciphers)
}

/// One handshake over a real socket: the protocol and cipher agreed, or nil when the server
/// refused what was offered (an alert from it ended the handshake; any other failure throws).
private func negotiate(_ port: Int, _ offer: TLSOffer) throws -> (version: String, cipher: String)? {
    let socket = try TestSocket(port: port)
    return try withExtendedLifetime(socket) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TestError("SSL_CTX_new failed") }
        defer { SSL_CTX_free(ctx) }
        SSL_CTX_set_security_level(ctx, 0)
        _ = montrose_SSL_CTX_set_min_proto_version(ctx, offer.versions.0)
        _ = montrose_SSL_CTX_set_max_proto_version(ctx, offer.versions.1)
        if let c = offer.ciphers, SSL_CTX_set_cipher_list(ctx, c) != 1 { throw TestError("client cannot offer \(c)") }
        if let s = offer.suites, SSL_CTX_set_ciphersuites(ctx, s) != 1 { throw TestError("client cannot offer \(s)") }
        if let g = offer.groups, montrose_SSL_CTX_set1_groups_list(ctx, g) != 1 { throw TestError("client cannot offer \(g)") }
        guard let ssl = SSL_new(ctx) else { throw TestError("SSL_new failed") }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, socket.fd)
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else {
            var reasons: [String] = []
            while case let code = ERR_get_error(), code != 0 {
                var buf = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buf, buf.count)
                reasons.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            guard reasons.contains(where: { $0.contains("alert") }) else {
                throw TestError("the handshake failed without an alert from the server: \(reasons)")
            }
            return nil
        }
        let version = String(cString: SSL_get_version(ssl))
        let cipher = String(cString: SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)))
        _ = SSL_shutdown(ssl)
        return (version, cipher)
    }
}
