// The contract's error codes (docs/protocol.md "Errors"): the `code` of a WebSocket error reply
// and of a bridge error body.
public enum ErrorCode: String, Sendable, CaseIterable {
    case badRequest = "bad_request"
    case unauthorized
    case forbidden
    case notFound = "not_found"
    case methodNotAllowed = "method_not_allowed"
    case conflict
    case tooLarge = "too_large"
    case rateLimited = "rate_limited"
    case unavailable
    case `internal`
}

extension HTTPStatus {
    /// The error code a bridge error body carries when the route names none.
    public var errorCode: ErrorCode {
        switch code {
        case 400, 414, 422, 426, 505: return .badRequest
        case 401: return .unauthorized
        case 403: return .forbidden
        case 404: return .notFound
        case 405: return .methodNotAllowed
        case 409: return .conflict
        case 413, 431: return .tooLarge
        case 429: return .rateLimited
        case 501, 503: return .unavailable
        default: return .internal
        }
    }
}
