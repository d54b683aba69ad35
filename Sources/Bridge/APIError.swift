import Persistence
import Protocol

// A bridge refusal: an HTTP status, the contract's error code and a message that names what
// was wrong (the field, the limit, the rule).
public struct APIError: Error, Sendable, Equatable {
    public var status: HTTPStatus
    public var message: String
    public var code: ErrorCode?

    public init(_ status: HTTPStatus, _ message: String, code: ErrorCode? = nil) {
        self.status = status
        self.message = message
        self.code = code
    }

    public var response: HTTPResponse {
        var r = HTTPResponse.error(status, message, code: code)
        if status == .unauthorized { r.headers.append(("WWW-Authenticate", "Bearer")) }
        return r
    }

    public static func invalid(_ field: String, _ why: String) -> APIError {
        APIError(.unprocessable, "\(field): \(why)", code: .badRequest)
    }

    static func storage(_ e: StoreError) -> APIError {
        let (code, message) = e.reply
        let status: HTTPStatus = switch code {
        case .unavailable: .serviceUnavailable
        case .conflict: .conflict
        default: .internalServerError
        }
        return APIError(status, message, code: code)
    }
}
