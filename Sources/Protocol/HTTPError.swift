// Every way an HTTP request can be refused before it reaches a route, each mapped once to
// its status. The body the hub sends is JSON: {"error":{"code":...,"message":...}}.
public enum HTTPError: Error, Equatable, Sendable {
    case badRequest(String)
    case requestLineTooLong(limit: Int)
    case headersTooLarge(limit: Int)
    case tooManyHeaders(limit: Int)
    case bodyTooLarge(limit: Int)
    case unsupportedVersion
    case notImplemented(String)

    public var status: HTTPStatus {
        switch self {
        case .badRequest: return .badRequest
        case .requestLineTooLong: return .uriTooLong
        case .headersTooLarge, .tooManyHeaders: return .headerFieldsTooLarge
        case .bodyTooLarge: return .payloadTooLarge
        case .unsupportedVersion: return .versionNotSupported
        case .notImplemented: return .notImplemented
        }
    }

    public var message: String {
        switch self {
        case .badRequest(let why): return why
        case .requestLineTooLong(let limit): return "request line over \(limit) bytes"
        case .headersTooLarge(let limit): return "header section over \(limit) bytes"
        case .tooManyHeaders(let limit): return "more than \(limit) header fields"
        case .bodyTooLarge(let limit): return "body over \(limit) bytes"
        case .unsupportedVersion: return "only HTTP/1.0 and HTTP/1.1 are served"
        case .notImplemented(let what): return "\(what) is not supported"
        }
    }
}
