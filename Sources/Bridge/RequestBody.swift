import Persistence
import Protocol

// A bridge request's JSON body, read field by field. Malformed JSON is a 400; a body that is
// JSON but breaks a field's rule is a 422 whose message names the field and the rule.
// Unknown fields are ignored (a backend may send more than this version reads).
struct RequestBody {
    let object: JSONObject

    /// Largest JSON nesting a bridge body may have.
    static let maxDepth = 16

    init(_ bytes: [UInt8]) throws(APIError) {
        guard !bytes.isEmpty else { throw APIError(.badRequest, "a JSON object body is required") }
        let parsed: JSON
        do {
            parsed = try JSONParser.parse(bytes, maxDepth: Self.maxDepth)
        } catch {
            throw APIError(.badRequest, "invalid JSON: \(error.message)")
        }
        guard case .object(let o) = parsed else { throw APIError(.badRequest, "the body must be a JSON object") }
        object = o
    }

    private func present(_ name: String) -> JSON? {
        guard let v = object[name], !v.isNull else { return nil }
        return v
    }

    func string(_ name: String, required: Bool = true, min: Int = 1, max: Int) throws(APIError) -> String? {
        guard let v = present(name) else {
            if required { throw .invalid(name, "is required") }
            return nil
        }
        guard let s = v.stringValue else { throw .invalid(name, "must be a string") }
        let n = s.count
        guard n >= min else { throw .invalid(name, min == 1 ? "must not be empty" : "must have at least \(min) characters") }
        guard n <= max else { throw .invalid(name, "must have at most \(max) characters") }
        return s
    }

    func requiredString(_ name: String, min: Int = 1, max: Int) throws(APIError) -> String {
        guard let s = try string(name, required: true, min: min, max: max) else { throw .invalid(name, "is required") }
        return s
    }

    func requiredChoice(_ name: String, _ allowed: [String]) throws(APIError) -> String {
        guard let s = try choice(name, allowed, required: true) else { throw .invalid(name, "is required") }
        return s
    }

    /// A display name: 1–100 characters, no control characters (what a token may carry).
    func displayName(_ name: String) throws(APIError) -> String {
        let s = try requiredString(name, max: TokenClaims.maxNameCharacters)
        guard TokenClaims.isValidName(s) else { throw .invalid(name, "must not contain control characters") }
        return s
    }

    func choice(_ name: String, _ allowed: [String], required: Bool = true) throws(APIError) -> String? {
        guard let s = try string(name, required: required, max: 64) else { return nil }
        guard allowed.contains(s) else { throw .invalid(name, "must be one of \(allowed.joined(separator: ", "))") }
        return s
    }

    func int(_ name: String, _ range: ClosedRange<Int64>) throws(APIError) -> Int64? {
        guard let v = present(name) else { return nil }
        guard case .int(let n) = v else { throw .invalid(name, "must be an integer") }
        guard range.contains(n) else { throw .invalid(name, "must be from \(range.lowerBound) to \(range.upperBound)") }
        return n
    }

    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let v = present(name) else { return nil }
        guard let b = v.boolValue else { throw .invalid(name, "must be true or false") }
        return b
    }

    /// An optional JSON object, serialized (at most `maxBytes`); "{}" when absent.
    func dataObject(_ name: String, maxBytes: Int) throws(APIError) -> String {
        guard let v = present(name) else { return "{}" }
        guard case .object = v else { throw .invalid(name, "must be a JSON object") }
        let text = v.serialized()
        guard text.count <= maxBytes else { throw .invalid(name, "must be at most \(maxBytes) bytes of JSON") }
        return String(decoding: text, as: UTF8.self)
    }

    func object(_ name: String) throws(APIError) -> JSONObject {
        guard let v = present(name) else { throw .invalid(name, "is required") }
        guard let o = v.objectValue else { throw .invalid(name, "must be a JSON object") }
        return o
    }

    /// An optional list of distinct services (a client's subscriptions).
    func services(_ name: String) throws(APIError) -> [String]? {
        guard let v = present(name) else { return nil }
        guard let list = v.arrayValue else { throw .invalid(name, "must be an array of services") }
        var out: [String] = []
        for item in list {
            guard let s = item.stringValue, TokenClaims.knownServices.contains(s) else {
                throw .invalid(name, "may hold only \(TokenClaims.knownServices.sorted().joined(separator: ", "))")
            }
            if !out.contains(s) { out.append(s) }
        }
        return out.sorted()
    }
}

/// The contract's shapes for ids and names.
enum Rules {
    static let roles = ["admin", "website_agent", "marketing_agent", "client"]
    static let services = ["marketing", "website", "courses", "support"]
    static let notificationServices = ["wallet", "marketing", "website", "courses", "support", "platform"]
    static let categories = ["payments", "messages", "analytics", "updates"]
    static let maxTitle = 200
    static let maxBody = 4_000
    static let maxName = TokenClaims.maxNameCharacters
    static let maxDataBytes = 8 * 1024
    static let maxRecipients = 1_000
    static let maxText = 8_000
    static let maxClientMsgId = 64
    static let maxPage = 100
    static let defaultPage = 50

    static func isUserID(_ s: String) -> Bool { TokenClaims.isValidUserID(s) }

    /// An email address we are willing to put in an SMTP envelope.
    static func isEmail(_ s: String) -> Bool { MailComposer.validateAddress(s) == nil && isPlainEmail(s) }

    private static func isPlainEmail(_ s: String) -> Bool {
        guard s.utf8.count <= 254, let at = s.firstIndex(of: "@"), at != s.startIndex, s.index(after: at) != s.endIndex else { return false }
        return !s.contains(where: { $0 == "\r" || $0 == "\n" || $0 == " " || $0 == "<" || $0 == ">" || $0 == "," })
            && s.filter { $0 == "@" }.count == 1
    }
}
