public struct HTTPStatus: Equatable, Hashable, Sendable {
    public let code: Int
    public let reason: String
    public init(_ code: Int, _ reason: String) { self.code = code; self.reason = reason }

    public static let ok = HTTPStatus(200, "OK")
    public static let created = HTTPStatus(201, "Created")
    public static let noContent = HTTPStatus(204, "No Content")
    public static let switchingProtocols = HTTPStatus(101, "Switching Protocols")
    public static let badRequest = HTTPStatus(400, "Bad Request")
    public static let unauthorized = HTTPStatus(401, "Unauthorized")
    public static let forbidden = HTTPStatus(403, "Forbidden")
    public static let notFound = HTTPStatus(404, "Not Found")
    public static let methodNotAllowed = HTTPStatus(405, "Method Not Allowed")
    public static let conflict = HTTPStatus(409, "Conflict")
    public static let payloadTooLarge = HTTPStatus(413, "Content Too Large")
    public static let uriTooLong = HTTPStatus(414, "URI Too Long")
    public static let unprocessable = HTTPStatus(422, "Unprocessable Content")
    public static let upgradeRequired = HTTPStatus(426, "Upgrade Required")
    public static let tooManyRequests = HTTPStatus(429, "Too Many Requests")
    public static let headerFieldsTooLarge = HTTPStatus(431, "Request Header Fields Too Large")
    public static let internalServerError = HTTPStatus(500, "Internal Server Error")
    public static let notImplemented = HTTPStatus(501, "Not Implemented")
    public static let serviceUnavailable = HTTPStatus(503, "Service Unavailable")
    public static let versionNotSupported = HTTPStatus(505, "HTTP Version Not Supported")

    /// The status for a code, with its standard reason phrase (a stored answer keeps only the
    /// code); "Status" for a code this list does not name.
    public static func code(_ code: Int) -> HTTPStatus {
        known[code] ?? HTTPStatus(code, "Status")
    }

    private static let known: [Int: HTTPStatus] = Dictionary(uniqueKeysWithValues: [HTTPStatus.ok, .created, .noContent, .switchingProtocols, .badRequest, .unauthorized, .forbidden,
                                   .notFound, .methodNotAllowed, .conflict, .payloadTooLarge, .uriTooLong, .unprocessable,
                                   .upgradeRequired, .tooManyRequests, .headerFieldsTooLarge, .internalServerError,
                                   .notImplemented, .serviceUnavailable, .versionNotSupported].map { ($0.code, $0) })
}
