import Notifications
import Foundation
import Glibc
import XCTest

// The SMTP client over real sockets against SMTPSink (delivery, encoding, scripted 4xx/5xx,
// refused and silent servers, header injection), and its pure parts without sockets.
final class SMTPClientTests: XCTestCase {
    var sink: SMTPSink!

    override func setUpWithError() throws { sink = try SMTPSink() }
    override func tearDown() { sink.stop() }

    private func config(port: Int? = nil, timeoutMs: Int = 2_000) -> SMTPConfiguration {
        SMTPConfiguration(host: "127.0.0.1", port: port ?? sink.port, from: "hub@montrose.test", timeoutMs: timeoutMs)
    }

    // MARK: delivery over sockets

    func testMailIsDeliveredWithHeadersAndABase64BodyThatDecodesToTheText() throws {
        let body = "Hello Ann,\nyour order shipped.\n.a line starting with a dot\n" + String(repeating: "long line ", count: 40) + "\nÜmlaut ✓"
        let outcome = SMTPClient.send(MailMessage(to: "ann@example.com", subject: "Order shipped", body: body), with: config())
        XCTAssertEqual(outcome, .sent)

        let mails = sink.waitForMail(count: 1, timeout: 2)
        XCTAssertEqual(mails.count, 1, "one mail delivered")
        let mail = try XCTUnwrap(mails.first)
        XCTAssertEqual(mail.from, "hub@montrose.test")
        XCTAssertEqual(mail.to, ["ann@example.com"])

        let (headers, bodyLines) = try split(mail.data)
        XCTAssertEqual(headers["From"], "hub@montrose.test")
        XCTAssertEqual(headers["To"], "ann@example.com")
        XCTAssertEqual(headers["Subject"], "Order shipped", "a plain ASCII subject is sent as is")
        XCTAssertEqual(headers["MIME-Version"], "1.0")
        XCTAssertEqual(headers["Content-Type"], "text/plain; charset=utf-8")
        XCTAssertEqual(headers["Content-Transfer-Encoding"], "base64")
        let messageID = try XCTUnwrap(headers["Message-ID"])
        XCTAssertTrue(messageID.hasPrefix("<") && messageID.hasSuffix("@montrose.test>"), "Message-ID was \(messageID)")

        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, d MMM yyyy HH:mm:ss Z"
        let date = try XCTUnwrap(formatter.date(from: headers["Date"] ?? ""), "RFC 5322 date, got \(headers["Date"] ?? "nil")")
        XCTAssertLessThan(abs(date.timeIntervalSinceNow), 60, "Date is now")

        XCTAssertGreaterThan(bodyLines.count, 3, "a long body is wrapped")
        XCTAssertTrue(bodyLines.allSatisfy { $0.count <= 76 }, "base64 lines are at most 76 characters")
        XCTAssertTrue(bodyLines.dropLast().allSatisfy { $0.count == 76 }, "only the last line is short")
        let decoded = try XCTUnwrap(Data(base64Encoded: bodyLines.joined()), "body is valid base64")
        XCTAssertEqual(String(decoding: decoded, as: UTF8.self), body.replacingOccurrences(of: "\n", with: "\r\n"),
                       "the body decodes to the text with CRLF line breaks")
        XCTAssertEqual(sink.hellos, ["EHLO montrose-hub"])
    }

    func testNonASCIISubjectIsEncodedAsRFC2047Words() throws {
        let subject = "Réservation confirmée ✓ — " + String(repeating: "naïve ", count: 12)
        XCTAssertEqual(SMTPClient.send(MailMessage(to: "ann@example.com", subject: subject, body: "x"), with: config()), .sent)
        let mail = try XCTUnwrap(sink.waitForMail(count: 1, timeout: 2).first)
        let (headers, _) = try split(mail.data)
        let raw = try XCTUnwrap(headers["Subject"])
        let words = raw.split(separator: " ").map(String.init)
        XCTAssertGreaterThan(words.count, 1, "a long subject is folded into several encoded words")
        var text = Data()
        for word in words {
            XCTAssertTrue(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="), "encoded word, got \(word)")
            XCTAssertLessThanOrEqual(word.count, 75, "RFC 2047 limits an encoded word to 75 characters")
            text += try XCTUnwrap(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))))
        }
        XCTAssertEqual(String(decoding: text, as: UTF8.self), subject)
        XCTAssertTrue(mail.data.utf8.allSatisfy { $0 < 0x80 }, "the whole DATA is 7-bit")
    }

    func testTransient451AtRecipientThenSuccessOnRetry() {
        sink.failNext(1, code: 451)
        let mail = MailMessage(to: "ann@example.com", subject: "s", body: "b")
        guard case .transient(let why) = SMTPClient.send(mail, with: config()) else {
            return XCTFail("451 must be transient")
        }
        XCTAssertTrue(why.contains("451"), "reason names the code: \(why)")
        XCTAssertEqual(SMTPClient.send(mail, with: config()), .sent, "the retry goes through")
        XCTAssertEqual(sink.attempts, 2)
        XCTAssertEqual(sink.waitForMail(count: 1, timeout: 2).count, 1)
    }

    func testPermanent550AtRecipientIsNotRetryable() {
        sink.rejectAll(code: 550)
        guard case .permanent(let why) = SMTPClient.send(MailMessage(to: "gone@example.com", subject: "s", body: "b"), with: config()) else {
            return XCTFail("550 must be permanent")
        }
        XCTAssertTrue(why.contains("550"), "reason names the code: \(why)")
        XCTAssertEqual(sink.attempts, 1)
        XCTAssertTrue(sink.mails.isEmpty, "nothing delivered")
    }

    func testRejectedEHLOFallsBackToHELO() {
        sink.rejectEHLO(code: 502)
        XCTAssertEqual(SMTPClient.send(MailMessage(to: "ann@example.com", subject: "s", body: "b"), with: config()), .sent)
        XCTAssertEqual(sink.hellos, ["EHLO montrose-hub", "HELO montrose-hub"])
    }

    func testConnectionRefusedIsTransient() throws {
        let port = try closedPort()
        guard case .transient = SMTPClient.send(MailMessage(to: "ann@example.com", subject: "s", body: "b"), with: config(port: port)) else {
            return XCTFail("a refused connection must be transient")
        }
    }

    func testServerThatNeverAnswersIsTransientWithinTheTimeout() throws {
        // A listening socket nobody accepts from: the kernel completes the handshake, no greeting ever comes.
        let (fd, port) = try listener()
        defer { close(fd) }
        let start = Date()
        let outcome = SMTPClient.send(MailMessage(to: "ann@example.com", subject: "s", body: "b"), with: config(port: port, timeoutMs: 300))
        let elapsed = Date().timeIntervalSince(start)
        guard case .transient(let why) = outcome else { return XCTFail("silence must be transient, got \(outcome)") }
        XCTAssertTrue(why.contains("timed out"), "reason: \(why)")
        XCTAssertGreaterThanOrEqual(elapsed, 0.25, "waited for the timeout")
        XCTAssertLessThan(elapsed, 1.5, "gave up soon after 300 ms")
    }

    func testGarbageOrOverlongGreetingIsTransient() throws {
        for greeting in ["hello, I am not SMTP\r\n", "220" + String(repeating: "x", count: 1_200) + "\r\n"] {
            let (fd, port) = try listener()
            defer { close(fd) }
            let server = Thread {
                let c = accept(fd, nil, nil)
                guard c >= 0 else { return }
                _ = greeting.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                var b = [UInt8](repeating: 0, count: 256)
                while recv(c, &b, b.count, 0) > 0 {}
                close(c)
            }
            server.start()
            let outcome = SMTPClient.send(MailMessage(to: "ann@example.com", subject: "s", body: "b"), with: config(port: port))
            guard case .transient(let why) = outcome else { return XCTFail("bad greeting must be transient, got \(outcome)") }
            XCTAssertTrue(why.contains("bad reply"), "reason: \(why)")
        }
    }

    func testLineBreaksAndUnsendableAddressesArePermanentWithoutConnecting() {
        let cases: [(MailMessage, SMTPConfiguration)] = [
            (MailMessage(to: "ann@example.com\r\nRCPT TO:<evil@x.test>", subject: "s", body: "b"), config()),
            (MailMessage(to: "ann@example.com\n", subject: "s", body: "b"), config()),
            (MailMessage(to: "ann@example.com", subject: "hi\r\nBcc: evil@x.test", body: "b"), config()),
            (MailMessage(to: "", subject: "s", body: "b"), config()),
            (MailMessage(to: "no-at-sign", subject: "s", body: "b"), config()),
            (MailMessage(to: "a b@example.com", subject: "s", body: "b"), config()),
            (MailMessage(to: "ann@example.com", subject: "s", body: "b"),
             SMTPConfiguration(host: "127.0.0.1", port: sink.port, from: "hub@montrose.test\r\nX: y")),
        ]
        for (mail, cfg) in cases {
            guard case .permanent = SMTPClient.send(mail, with: cfg) else {
                return XCTFail("\(mail) from \(cfg.from) must be permanent")
            }
        }
        XCTAssertEqual(sink.connections, 0, "rejected before connecting")
        var huge = config()
        huge.timeoutMs = .max
        XCTAssertEqual(SMTPClient.send(MailMessage(to: "ann@example.com", subject: "s", body: "b"), with: huge), .sent,
                       "an absurd timeout is clamped, not overflowed")
    }

    // MARK: pure parts

    func testReplyParserJoinsMultiLineRepliesAndKeepsWhatFollows() throws {
        var parser = SMTPReplyParser()
        let text = "250-sink.test greets you\r\n250-PIPELINING\r\n250 SIZE 100\r\n354 go\n"
        var replies: [SMTPReply] = []
        for byte in text.utf8 {
            parser.append([byte])
            if let r = try parser.next() { replies.append(r) }
        }
        XCTAssertEqual(replies, [SMTPReply(code: 250, lines: ["sink.test greets you", "PIPELINING", "SIZE 100"]),
                                 SMTPReply(code: 354, lines: ["go"])])
        XCTAssertEqual(try SMTPReplyParser.parse("221\r\n"), SMTPReply(code: 221, lines: [""]))
        XCTAssertNil(try SMTPReplyParser.parse("250-first\r\n250 partial"), "incomplete reply needs more bytes")
    }

    func testReplyParserRejectsGarbageAndOversizedReplies() {
        let malformed = ["25O ok\r\n", "250+ok\r\n", "99 x\r\n", "999 x\r\n", "150 x\r\n", "\r\n", "abc\r\n",
                         "250-a\r\n251 b\r\n"]
        for text in malformed {
            XCTAssertThrowsError(try SMTPReplyParser.parse(text), "\(text.debugDescription) is malformed") { error in
                guard case SMTPReplyError.malformed = error else { return XCTFail("\(text.debugDescription): \(error)") }
            }
        }
        let long = "250 " + String(repeating: "x", count: SMTPReplyParser.maxLineBytes)
        XCTAssertThrowsError(try SMTPReplyParser.parse(long)) { XCTAssertEqual($0 as? SMTPReplyError, .lineTooLong, "even before its LF") }
        XCTAssertThrowsError(try SMTPReplyParser.parse(long + "\r\n")) { XCTAssertEqual($0 as? SMTPReplyError, .lineTooLong) }
        let atLimit = "250 " + String(repeating: "x", count: SMTPReplyParser.maxLineBytes - 6) + "\r\n"
        XCTAssertEqual(try SMTPReplyParser.parse(atLimit)?.code, 250, "a line of exactly the limit is accepted")
        let endless = String(repeating: "250-more\r\n", count: SMTPReplyParser.maxReplyLines + 1)
        XCTAssertThrowsError(try SMTPReplyParser.parse(endless)) { XCTAssertEqual($0 as? SMTPReplyError, .replyTooLarge) }
    }

    func testConfigurationParsesHostPort() {
        let a = SMTPConfiguration.parse("127.0.0.1:2525", from: "hub@x.test")
        XCTAssertEqual(a, SMTPConfiguration(host: "127.0.0.1", port: 2525, from: "hub@x.test"))
        XCTAssertEqual(SMTPConfiguration.parse("[::1]:25", from: "f@x")?.host, "::1")
        XCTAssertEqual(SMTPConfiguration.parse("[::1]:25", from: "f@x")?.port, 25)
        XCTAssertEqual(SMTPConfiguration.parse("mail.internal:65535", from: "f@x")?.port, 65_535)
        XCTAssertEqual(SMTPConfiguration.parse("relay:1", from: "f@x")?.heloName, "montrose-hub")
        for bad in ["", "localhost", "localhost:", ":25", "host:0", "host:65536", "host:-1", "host:+25", "host:2 5",
                    "host:99999999999999999999", "::1:25", "[::1]25", "[::1]", "[]:25", "[::1:25", "ho st:25", "host:25\n"] {
            XCTAssertNil(SMTPConfiguration.parse(bad, from: "f@x"), "\(bad.debugDescription) must not parse")
        }
    }

    func testBase64LinesDotStuffingAndTerminator() {
        XCTAssertEqual(MailComposer.base64(Array("Man".utf8)), "TWFu")
        XCTAssertEqual(MailComposer.base64(Array("Ma".utf8)), "TWE=")
        XCTAssertEqual(MailComposer.base64(Array("M".utf8)), "TQ==")
        XCTAssertEqual(MailComposer.base64Lines([]), "")
        let lines = MailComposer.base64Lines([UInt8](repeating: 0xFF, count: 58)).components(separatedBy: "\r\n")
        XCTAssertEqual(lines.map(\.count), [76, 4, 0], "57 bytes fill one 76-character line exactly")

        XCTAssertEqual(String(decoding: MailComposer.dataPayload(".a\r\nb\r\n..c\r\n"), as: UTF8.self), "..a\r\nb\r\n...c\r\n.\r\n")
        XCTAssertEqual(String(decoding: MailComposer.dataPayload("no final break"), as: UTF8.self), "no final break\r\n.\r\n")
        XCTAssertEqual(MailComposer.canonicalLineEndings("a\nb\r\nc\rd\r"), "a\r\nb\r\nc\r\nd\r\n")
    }

    func testDatesAndHeaderEncoding() {
        XCTAssertEqual(MailComposer.rfc5322Date(secondsSince1970: 0), "Thu, 1 Jan 1970 00:00:00 +0000")
        XCTAssertEqual(MailComposer.rfc5322Date(secondsSince1970: 951_782_400 + 3_723), "Tue, 29 Feb 2000 01:02:03 +0000")
        XCTAssertEqual(MailComposer.encodeHeaderValue("Plain subject"), "Plain subject")
        XCTAssertEqual(MailComposer.encodeHeaderValue("é"), "=?UTF-8?B?w6k=?=")
        XCTAssertTrue(MailComposer.encodeHeaderValue("looks =?like?= a word").hasPrefix("=?UTF-8?B?"),
                      "text that could be read as an encoded word is encoded")
        XCTAssertEqual(MailComposer.messageID(unique: "u1", from: "hub@montrose.test"), "<u1@montrose.test>")
    }

    // MARK: helpers

    /// Headers (unfolded) and base64 body lines of a received DATA text.
    private func split(_ data: String) throws -> ([String: String], [String]) {
        let parts = data.components(separatedBy: "\r\n\r\n")
        XCTAssertEqual(parts.count, 2, "one blank line between headers and body")
        let head = try XCTUnwrap(parts.first).replacingOccurrences(of: "\r\n ", with: " ")
        var headers: [String: String] = [:]
        for line in head.components(separatedBy: "\r\n") {
            let kv = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2 { headers[kv[0]] = kv[1] }
        }
        let body = parts.count > 1 ? parts[1].components(separatedBy: "\r\n").filter { !$0.isEmpty } : []
        return (headers, body)
    }

    private func listener() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SMTPSinkError("socket") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { close(fd); throw SMTPSinkError("listen") }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    /// A port that was just bound and released: connecting to it is refused.
    private func closedPort() throws -> Int {
        let (fd, port) = try listener()
        close(fd)
        return port
    }
}
