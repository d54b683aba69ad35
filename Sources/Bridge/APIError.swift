import Persistence
import Protocol

// A bridge refusal: an HTTP status, the contract's error code and a message that names what
// was wrong (the field, the limit, the rule).
public struct APIError: Error, Sendable, Equatable {
    public var status: HTTPStatus
    public var message: String
    public var code: String?

    public init(_ status: HTTPStatus, _ message: String, code: String? = nil) {
        self.status = status
        self.message = message
        self.code = code
    }

    public var response: HTTPResponse {
        var r = HTTPResponse.error(status, message, code: code)
        if status == .unauthorized { r.headers.append(("WWW-Authenticate", "Bearer")) }
        return r
    }

    static func invalid(_ field: String, _ why: String) -> APIError {
        APIError(.unprocessable, "\(field): \(why)", code: "bad_request")
    }

    static func storage(_ e: StoreError) -> APIError {
        switch e {
        case .unavailable(let why): return APIError(.serviceUnavailable, why, code: "unavailable")
        case .closing: return APIError(.serviceUnavailable, "the hub is shutting down", code: "unavailable")
        case .conflict(let why): return APIError(.conflict, why)
        case .internalError: return APIError(.internalServerError, "storage error", code: "internal")
        }
    }
}
