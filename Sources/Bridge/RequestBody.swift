import Notifications
import Persistence
import Protocol

// A bridge request's JSON body, read field by field. Malformed JSON is a 400; a body that is
// JSON but breaks a field's rule is a 422 whose message names the field and the rule.
// Unknown fields are ignored (a backend may send more than this version reads). The WebSocket
// ops that share a bridge route's fields (admin.broadcast) read their params with it too.
public struct RequestBody {
    let object: JSONObject

    public init(object: JSONObject) { self.object = object }

    init(_ bytes: [UInt8]) throws(APIError) {
        guard !bytes.isEmpty else { throw APIError(.badRequest, "a JSON object body is required") }
        let parsed: JSON
        do {
            parsed = try JSONParser.parse(bytes, maxDepth: ContractLimits.maxJSONDepth)
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

    public func string(_ name: String, required: Bool = true, min: Int = 1, max: Int) throws(APIError) -> String? {
        guard let v = present(name) else {
            if required { throw .invalid(name, "is required") }
            return nil
        }
        guard let s = v.stringValue else { throw .invalid(name, "must be a string") }
        // Bytes first: a character may be any number of combining scalars, so a limit in
        // characters alone would not bound the size (4 bytes per character is the most UTF-8 needs
        // for a single scalar).
        guard s.utf8.count <= max * 4 else { throw .invalid(name, "must be at most \(max * 4) bytes") }
        let n = s.count
        guard n >= min else { throw .invalid(name, min == 1 ? "must not be empty" : "must have at least \(min) characters") }
        guard n <= max else { throw .invalid(name, "must have at most \(max) characters") }
        return s
    }

    public func requiredString(_ name: String, min: Int = 1, max: Int) throws(APIError) -> String {
        guard let s = try string(name, required: true, min: min, max: max) else { throw .invalid(name, "is required") }
        return s
    }

    public func requiredChoice(_ name: String, _ allowed: [String]) throws(APIError) -> String {
        guard let s = try choice(name, allowed, required: true) else { throw .invalid(name, "is required") }
        return s
    }

    /// A display name: 1–100 characters, no control characters (what a token may carry).
    public func displayName(_ name: String) throws(APIError) -> String {
        let s = try requiredString(name, max: DisplayName.maxCharacters)
        guard DisplayName.isValid(s) else { throw .invalid(name, "must not contain control characters") }
        return s
    }

    public func choice(_ name: String, _ allowed: [String], required: Bool = true) throws(APIError) -> String? {
        guard let s = try string(name, required: required, max: 64) else { return nil }
        guard allowed.contains(s) else { throw .invalid(name, "must be one of \(allowed.joined(separator: ", "))") }
        return s
    }

    public func int(_ name: String, _ range: ClosedRange<Int64>) throws(APIError) -> Int64? {
        guard let v = present(name) else { return nil }
        guard case .int(let n) = v else { throw .invalid(name, "must be an integer") }
        guard range.contains(n) else { throw .invalid(name, "must be from \(range.lowerBound) to \(range.upperBound)") }
        return n
    }

    public func bool(_ name: String) throws(APIError) -> Bool? {
        guard let v = present(name) else { return nil }
        guard let b = v.boolValue else { throw .invalid(name, "must be true or false") }
        return b
    }

    /// An optional JSON object, serialized (at most `maxBytes`); "{}" when absent.
    public func dataObject(_ name: String, maxBytes: Int) throws(APIError) -> String {
        guard let v = present(name) else { return "{}" }
        guard case .object = v else { throw .invalid(name, "must be a JSON object") }
        let text = v.serialized()
        guard text.count <= maxBytes else { throw .invalid(name, "must be at most \(maxBytes) bytes of JSON") }
        return String(decoding: text, as: UTF8.self)
    }

    public func object(_ name: String) throws(APIError) -> JSONObject {
        guard let v = present(name) else { throw .invalid(name, "is required") }
        guard let o = v.objectValue else { throw .invalid(name, "must be a JSON object") }
        return o
    }

    /// An optional list of distinct services (a client's subscriptions).
    public func services(_ name: String) throws(APIError) -> [String]? {
        guard let v = present(name) else { return nil }
        guard let list = v.arrayValue else { throw .invalid(name, "must be an array of services") }
        var out: [String] = []
        for item in list {
            guard let s = item.stringValue, Vocabulary.serviceSet.contains(s) else {
                throw .invalid(name, "may hold only \(Vocabulary.services.joined(separator: ", "))")
            }
            if !out.contains(s) { out.append(s) }
        }
        return out.sorted()
    }
}

extension RequestBody {
    /// An email address we are willing to put in an SMTP envelope: what SMTP will take
    /// (MailComposer's rule), and a single address: one '@', no list.
    static func isEmail(_ s: String) -> Bool {
        MailComposer.validateAddress(s) == nil && !s.contains(",") && s.utf8.filter { $0 == UInt8(ascii: "@") }.count == 1
    }
}
