import XCTest
@testable import Protocol

// The attachment rules without sockets (docs/protocol.md "Attachments"): origins parsed alike
// from the flag and from URLs, names made safe to show, media types normalised.
final class AttachmentRulesTests: XCTestCase {
    func testAnOriginIsSchemeHostAndPortWithTheDefaultPortLeftOut() {
        XCTAssertEqual(AttachmentOrigin.parse("https://Files.Example.com")?.description, "https://files.example.com")
        XCTAssertEqual(AttachmentOrigin.parse("https://files.example.com:443/")?.description, "https://files.example.com")
        XCTAssertEqual(AttachmentOrigin.parse("http://127.0.0.1:8080")?.description, "http://127.0.0.1:8080")
        for bad in ["files.example.com", "https://", "https://files.example.com/uploads", "ftp://files.example.com",
                    "https://a@files.example.com", "https://files.example.com:0", "https://files.example.com:99999",
                    "https://files.example.com:x", "https://[::1]", "https://fil es.example.com", "https://fileś.example.com"] {
            XCTAssertNil(AttachmentOrigin.parse(bad), bad)
        }
    }

    func testAURLsOriginIsWhatItsAuthorityNamesNotWhatItLooksLike() {
        XCTAssertEqual(AttachmentOrigin.of(url: "https://files.example.com/a/b.png?v=2#x")?.origin.description, "https://files.example.com")
        XCTAssertEqual(AttachmentOrigin.of(url: "https://files.example.com?x")?.origin.description, "https://files.example.com")
        XCTAssertNil(AttachmentOrigin.of(url: "https://files.example.com@evil.example/x"), "user info is refused outright")
        XCTAssertNil(AttachmentOrigin.of(url: "https://files.example.com\\@evil.example/x"))
        XCTAssertNil(AttachmentOrigin.of(url: "https://files.example.com\u{0}/x"))
        XCTAssertNil(AttachmentOrigin.of(url: "javascript:alert(1)//https://files.example.com"))
        XCTAssertEqual(AttachmentOrigin.of(url: "https://files.example.com.evil.example/x")?.origin.host, "files.example.com.evil.example")
    }

    func testNamesLoseWhatCouldDeceiveAReader() {
        XCTAssertEqual(AttachmentName.sanitised("report.pdf"), "report.pdf")
        XCTAssertEqual(AttachmentName.sanitised("invoice\u{202E}fdp.exe"), "invoicefdp.exe")
        XCTAssertEqual(AttachmentName.sanitised("../../etc/passwd"), "_.._etc_passwd")
        XCTAssertEqual(AttachmentName.sanitised("  Résumé – 2026.docx  "), "Résumé – 2026.docx")
        XCTAssertEqual(AttachmentName.sanitised("a\u{0}b\tc\u{7F}d"), "abcd")
        XCTAssertEqual(AttachmentName.sanitised(" . \u{200F} "), "")
    }

    func testMediaTypesAreNormalisedWithoutParameters() {
        XCTAssertEqual(MediaType.normalised("Image/PNG"), "image/png")
        XCTAssertEqual(MediaType.normalised("text/plain; charset=utf-8"), "text/plain")
        XCTAssertEqual(MediaType.normalised("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                       "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        for bad in ["png", "image/", "/png", "image/png/x", "image/p ng", "ímage/png", ""] { XCTAssertNil(MediaType.normalised(bad), bad) }
    }

    func testAListIsCheckedAgainstThePolicyNamingTheField() throws {
        let policy = AttachmentPolicy(origins: [AttachmentOrigin.parse("https://files.example.com")!], allowsHTTP: false)
        func check(_ json: String) -> Result<[MessageAttachment], ParamError> {
            guard case .object(let o)? = try? JSONParser.parse(json) else { return .failure(ParamError(message: "not JSON")) }
            do { return .success(try Params<ParamError>(object: o).attachments("attachments", policy: policy)) }
            catch { return .failure(error) }
        }
        XCTAssertEqual(try check(#"{}"#).get(), [])
        XCTAssertEqual(try check(#"{"attachments":null}"#).get(), [])
        XCTAssertEqual(try check(#"{"attachments":[{"url":"https://files.example.com/a","name":"a","size":0,"content_type":"text/plain"}]}"#).get(),
                       [MessageAttachment(url: "https://files.example.com/a", name: "a", size: 0, contentType: "text/plain")])
        func refusal(_ json: String) -> String {
            if case .failure(let e) = check(json) { return e.message }
            return "accepted"
        }
        XCTAssertEqual(refusal(#"{"attachments":[{"url":"http://files.example.com/a","name":"a","size":0,"content_type":"text/plain"}]}"#),
                       "attachments[0].url: must be https")
        XCTAssertEqual(refusal(#"{"attachments":[{"url":"https://files.example.com/a","name":"a","size":1.5,"content_type":"text/plain"}]}"#),
                       "attachments[0].size: must be an integer number of bytes")
        XCTAssertEqual(refusal(#"{"attachments":[{"url":"https://files.example.com/a","size":1,"content_type":"text/plain"}]}"#),
                       "attachments[0].name: is required")
        XCTAssertEqual(refusal(#"{"attachments":{}}"#), "attachments: must be an array of attachments")
        let dev = AttachmentPolicy(origins: [AttachmentOrigin.parse("http://127.0.0.1:9000")!], allowsHTTP: true)
        XCTAssertNoThrow(try Params<ParamError>(object: ["attachments": .array([.object(["url": "http://127.0.0.1:9000/x", "name": "x", "size": 1,
                                                                                           "content_type": "image/png"])])])
            .attachments("attachments", policy: dev), "plain http in development mode")
    }
}
