import Foundation
import Protocol
import XCTest

// A backend's view of the bridge: HTTP/1.1 requests over a real socket, JSON in and out.
struct BridgeClient {
    let port: Int

    struct Answer {
        let status: Int
        let headers: [String: String]
        let text: String
        var json: JSON { (try? JSONParser.parse(text)) ?? .null }
        var errorMessage: String { json["error"]?["message"]?.stringValue ?? "" }
    }

    func send(_ method: String, _ path: String, body: String? = nil, key: String? = TestHub.bridgeKey,
              headers: [String: String] = [:]) throws -> Answer {
        let s = try TestSocket(port: port)
        var raw = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let key { raw += "Authorization: Bearer \(key)\r\n" }
        for (k, v) in headers { raw += "\(k): \(v)\r\n" }
        let bytes = Array((body ?? "").utf8)
        if body != nil { raw += "Content-Type: application/json\r\nContent-Length: \(bytes.count)\r\n" }
        raw += "\r\n"
        try s.write(Array(raw.utf8) + bytes)
        let r = try s.readHTTPResponse()
        return Answer(status: r.status, headers: r.headers, text: String(decoding: r.body, as: UTF8.self))
    }

    func get(_ path: String) throws -> Answer { try send("GET", path) }

    func post(_ path: String, _ body: String, idempotencyKey: String? = nil) throws -> Answer {
        try send("POST", path, body: body, headers: idempotencyKey.map { ["Idempotency-Key": $0] } ?? [:])
    }

    func put(_ path: String, _ body: String) throws -> Answer { try send("PUT", path, body: body) }

    /// PUT /v1/users/{id}, asserting success.
    func user(_ id: String, _ role: String, email: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let emailField = email.map { ",\"email\":\"\($0)\"" } ?? ""
        let r = try put("/v1/users/\(id)", "{\"role\":\"\(role)\",\"name\":\"\(id.capitalized)\"\(emailField)}")
        XCTAssertEqual(r.status, 200, r.text, file: file, line: line)
    }
}

extension JSON {
    /// The array element at `i` (nil when not an array or out of range).
    subscript(i: Int) -> JSON? {
        guard let a = arrayValue, a.indices.contains(i) else { return nil }
        return a[i]
    }
}
