// Reading a request's params field by field, with the contract's rules: the same reader for the
// bridge's JSON bodies and the WebSocket ops' params, so a field is checked alike on both.
// Unknown fields are ignored (a backend may send more than this version reads).

/// How a refused param is reported: the bridge answers a field rule with 422 and a malformed
/// query parameter with 400; the WebSocket answers both with `bad_request` and the same message.
public protocol ParamFailure: Error {
    /// A field breaks its rule; the message is "<field>: <why>".
    static func invalid(_ field: String, _ why: String) -> Self
    /// A query parameter is malformed; the message is given whole.
    static func malformed(_ message: String) -> Self
}

/// The WebSocket ops' refusal: the message of a `bad_request` reply.
public struct ParamError: ParamFailure, Equatable {
    public let message: String
    public static func invalid(_ field: String, _ why: String) -> ParamError { ParamError(message: "\(field): \(why)") }
    public static func malformed(_ message: String) -> ParamError { ParamError(message: message) }
}

public struct Params<Failure: ParamFailure> {
    public let object: JSONObject

    public init(object: JSONObject) { self.object = object }

    private func present(_ name: String) -> JSON? {
        guard let v = object[name], !v.isNull else { return nil }
        return v
    }

    public func string(_ name: String, required: Bool = true, min: Int = 1, max: Int) throws(Failure) -> String? {
        guard let v = present(name) else {
            if required { throw Failure.invalid(name, "is required") }
            return nil
        }
        guard let s = v.stringValue else { throw Failure.invalid(name, "must be a string") }
        // Bytes first: a character may be any number of combining scalars, so a limit in
        // characters alone would not bound the size (4 bytes per character is the most UTF-8 needs
        // for a single scalar).
        guard s.utf8.count <= max * 4 else { throw Failure.invalid(name, "must be at most \(max * 4) bytes") }
        let n = s.count
        guard n >= min else { throw Failure.invalid(name, min == 1 ? "must not be empty" : "must have at least \(min) characters") }
        guard n <= max else { throw Failure.invalid(name, "must have at most \(max) characters") }
        return s
    }

    public func requiredString(_ name: String, min: Int = 1, max: Int) throws(Failure) -> String {
        guard let s = try string(name, required: true, min: min, max: max) else { throw Failure.invalid(name, "is required") }
        return s
    }

    public func requiredChoice(_ name: String, _ allowed: [String]) throws(Failure) -> String {
        guard let s = try choice(name, allowed, required: true) else { throw Failure.invalid(name, "is required") }
        return s
    }

    /// A display name: 1–100 characters, no control characters (what a token may carry).
    public func displayName(_ name: String) throws(Failure) -> String {
        let s = try requiredString(name, max: DisplayName.maxCharacters)
        guard DisplayName.isValid(s) else { throw Failure.invalid(name, "must not contain control characters") }
        return s
    }

    public func choice(_ name: String, _ allowed: [String], required: Bool = true) throws(Failure) -> String? {
        guard let s = try string(name, required: required, max: 64) else { return nil }
        guard allowed.contains(s) else { throw Failure.invalid(name, "must be one of \(allowed.joined(separator: ", "))") }
        return s
    }

    public func int(_ name: String, _ range: ClosedRange<Int64>) throws(Failure) -> Int64? {
        guard let v = present(name) else { return nil }
        guard case .int(let n) = v else { throw Failure.invalid(name, "must be an integer") }
        guard range.contains(n) else { throw Failure.invalid(name, "must be from \(range.lowerBound) to \(range.upperBound)") }
        return n
    }

    public func bool(_ name: String) throws(Failure) -> Bool? {
        guard let v = present(name) else { return nil }
        guard let b = v.boolValue else { throw Failure.invalid(name, "must be true or false") }
        return b
    }

    /// An optional JSON object, serialized (at most `maxBytes`); "{}" when absent.
    public func dataObject(_ name: String, maxBytes: Int) throws(Failure) -> String {
        guard let v = present(name) else { return "{}" }
        guard case .object = v else { throw Failure.invalid(name, "must be a JSON object") }
        let text = v.serialized()
        guard text.count <= maxBytes else { throw Failure.invalid(name, "must be at most \(maxBytes) bytes of JSON") }
        return String(decoding: text, as: UTF8.self)
    }

    public func object(_ name: String) throws(Failure) -> JSONObject {
        guard let v = present(name) else { throw Failure.invalid(name, "is required") }
        guard let o = v.objectValue else { throw Failure.invalid(name, "must be a JSON object") }
        return o
    }

    /// An optional list of distinct services (a client's subscriptions).
    public func services(_ name: String) throws(Failure) -> [String]? {
        guard let v = present(name) else { return nil }
        guard let list = v.arrayValue else { throw Failure.invalid(name, "must be an array of services") }
        var out: [String] = []
        for item in list {
            guard let s = item.stringValue, Vocabulary.serviceSet.contains(s) else {
                throw Failure.invalid(name, "may hold only \(Vocabulary.services.joined(separator: ", "))")
            }
            if !out.contains(s) { out.append(s) }
        }
        return out.sorted()
    }
}

extension NotificationQuery {
    /// The paging and filters of a notification list, from query strings (bridge) or op
    /// params (WebSocket): `before`, `limit`, `service`, `unread_only`.
    public static func read<Failure: ParamFailure>(_ param: (String) throws(Failure) -> JSON?) throws(Failure) -> NotificationQuery {
        var q = NotificationQuery(limit: ContractLimits.defaultPage)
        if let v = try param("before") {
            guard let n = integer(v), n >= 1 else { throw Failure.malformed("before must be a positive integer (a notification id)") }
            q.before = n
        }
        if let v = try param("limit") {
            guard let n = integer(v), (1...Int64(ContractLimits.maxPage)).contains(n) else {
                throw Failure.malformed("limit must be an integer from 1 to \(ContractLimits.maxPage)")
            }
            q.limit = Int(n)
        }
        if let v = try param("service") {
            guard let s = v.stringValue, Vocabulary.notificationServices.contains(s) else {
                throw Failure.malformed("service must be one of \(Vocabulary.notificationServices.joined(separator: ", "))")
            }
            q.service = s
        }
        if let v = try param("unread_only") {
            switch v {
            case .bool(let b): q.unreadOnly = b
            case .string("true"), .string("1"): q.unreadOnly = true
            case .string("false"), .string("0"): q.unreadOnly = false
            default: throw Failure.malformed("unread_only must be true or false")
            }
        }
        return q
    }

    /// An integer given as a JSON number or as query text.
    private static func integer(_ v: JSON) -> Int64? {
        switch v {
        case .int(let n): return n
        case .string(let s): return Int64(s)
        default: return nil
        }
    }
}
