import Glibc
import Core
import Protocol

// The web console on the public listener: its files (embedded in the executable at build
// time, see Package.swift) and, in development mode only, the demo sign-in endpoints. Those
// hand out any demo user's token (an admin's too), so they answer callers on this machine only.
// `GET /console/settings` tells the page what it must know of the hub's configuration: the
// attachment origins (the only places besides the hub an image may load from, in the page's
// Content-Security-Policy too) and the edit window.
struct ConsoleRoutes: Sendable {
    let dev: Bool
    let signer: JWTSigner
    /// `--attachment-origin`: thumbnails load from these and nowhere else.
    let attachmentOrigins: [AttachmentOrigin]
    /// `--edit-window`: how long after sending a message its sender may edit or delete it.
    let editWindowMs: Int64
    /// The Content-Security-Policy of every console file, built once.
    let contentSecurityPolicy: String
    private let settingsBody: String

    init(dev: Bool, signer: JWTSigner, attachmentOrigins: [AttachmentOrigin] = [],
         editWindowMs: Int64 = ContractLimits.defaultEditWindowMs) {
        self.dev = dev
        self.signer = signer
        var seen = Set<AttachmentOrigin>()
        let origins = attachmentOrigins.filter { seen.insert($0).inserted }
        self.attachmentOrigins = origins
        self.editWindowMs = editWindowMs
        contentSecurityPolicy = Self.policy(imageOrigins: origins)
        settingsBody = String(decoding: JSONWriter.object { w in
            w.key("attachment_origins")
            w.beginArray()
            for o in origins { w.string(o.description) }
            w.endArray()
            w.key("edit_window_ms"); w.int(editWindowMs)
        }, as: UTF8.self)
    }

    /// Nothing on the page may load from anywhere but this hub, except images from the
    /// attachment origins (exactly those: an attachment's thumbnail).
    static func policy(imageOrigins: [AttachmentOrigin]) -> String {
        let images = (["'self'", "data:"] + imageOrigins.map(\.description)).joined(separator: " ")
        return "default-src 'self'; connect-src 'self' ws: wss:; img-src \(images); style-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    }

    /// Path → (content type, body). Small and fixed: built once.
    private static let files: [String: (String, [UInt8])] = [
        "/": ("text/html; charset=utf-8", PackageResources.index_html),
        "/index.html": ("text/html; charset=utf-8", PackageResources.index_html),
        "/console.js": ("text/javascript; charset=utf-8", PackageResources.console_js),
        "/console.css": ("text/css; charset=utf-8", PackageResources.console_css),
        "/hub.js": ("text/javascript; charset=utf-8", PackageResources.hub_js),
        "/reports.js": ("text/javascript; charset=utf-8", PackageResources.reports_js),
        "/messages.js": ("text/javascript; charset=utf-8", PackageResources.messages_js),
        "/search.js": ("text/javascript; charset=utf-8", PackageResources.search_js),
        "/attach.js": ("text/javascript; charset=utf-8", PackageResources.attach_js),
        "/hub.d.ts": ("text/plain; charset=utf-8", PackageResources.hub_d_ts),
    ]

    /// The answer for `request` from `peer`, or nil when the path is not the console's.
    func handle(_ request: HTTPRequest, peer: PeerAddress) -> HTTPResponse? {
        let path = request.path
        if let (type, body) = Self.files[path] {
            guard request.method == "GET" || request.method == "HEAD" else { return HTTPResponse.methodNotAllowed(allow: "GET, HEAD") }
            return HTTPResponse(status: .ok, headers: [
                ("Content-Type", type),
                ("Cache-Control", "no-cache"),
                ("Content-Security-Policy", contentSecurityPolicy),
                ("X-Content-Type-Options", "nosniff"),
            ], body: body)
        }
        if dev && path.hasPrefix("/dev/"), let refusal = Self.refuseDevRequest(request, peer: peer) {
            return .error(.forbidden, refusal)
        }
        switch path {
        case "/console/settings":
            guard request.method == "GET" || request.method == "HEAD" else { return HTTPResponse.methodNotAllowed(allow: "GET, HEAD") }
            return .json(.ok, settingsBody)
        case "/dev/users":
            // Always answered (a 404 would be a console error on every sign-in page): outside
            // development mode it says so and lists nobody.
            guard request.method == "GET" else { return HTTPResponse.methodNotAllowed(allow: "GET") }
            return .json(.ok, String(decoding: JSONWriter.object { w in
                w.key("dev"); w.bool(dev)
                w.key("users"); w.objects(dev ? DemoSeed.users : []) { w, u in
                    w.key("id"); w.string(u.id)
                    w.key("role"); w.string(u.role)
                    w.key("name"); w.string(u.name)
                }
            }, as: UTF8.self))
        case "/dev/token":
            guard dev else { return .error(.notFound, "no such path") }
            guard request.method == "POST" else { return HTTPResponse.methodNotAllowed(allow: "POST") }
            guard let body = try? JSONParser.parse(request.body, maxDepth: 4), let id = body["user"]?.stringValue,
                  let user = DemoSeed.users.first(where: { $0.id == id }), let role = Role(rawValue: user.role) else {
                return .error(.unprocessable, "user: must be one of the demo users (GET /dev/users)")
            }
            let exp = wallMillis() / 1000 + 8 * 3600
            let token = signer.sign(TokenClaims(sub: user.id, role: role, name: user.name, exp: exp, services: user.services))
            return .json(.ok, String(decoding: JSONWriter.object { w in
                w.key("token"); w.string(token)
                w.key("expires_at"); w.int(exp)
            }, as: UTF8.self))
        default:
            return nil
        }
    }

    /// Why a development sign-in request is refused, or nil. The peer must be on this machine,
    /// and so must the names the request carries: a loopback socket alone is not enough, since
    /// a page on another site can reach 127.0.0.1 through DNS rebinding (its Host and Origin
    /// then name that site), and a proxy or tunnel on this machine makes every caller look local
    /// (it adds Forwarded / X-Forwarded-For / Via). The POST must be JSON, which a cross-site page
    /// cannot send without a CORS preflight the hub never grants.
    static func refuseDevRequest(_ request: HTTPRequest, peer: PeerAddress) -> String? {
        let local = "development sign-in answers only requests made on the hub's own machine"
        guard peer.isLoopback else { return local + " (loopback)" }
        guard let host = request.header("host"), isLoopbackName(host) else { return local + " (Host must be localhost, 127.x or [::1])" }
        if let origin = request.header("origin"), !isLoopbackOrigin(origin) { return local + " (Origin is another site)" }
        for proxied in ["forwarded", "x-forwarded-for", "x-forwarded-host", "via"] where request.header(proxied) != nil {
            return local + " (it came through a proxy)"
        }
        if request.method == "POST" {
            let type = request.header("content-type")?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
            guard type == "application/json" else { return "development sign-in takes Content-Type: application/json" }
        }
        return nil
    }

    /// `localhost`, an address in 127.0.0.0/8 or `[::1]`, with or without a port.
    static func isLoopbackName(_ hostAndPort: String) -> Bool {
        var host = Substring(hostAndPort.lowercased())
        if host.hasPrefix("[") {
            guard let end = host.firstIndex(of: "]") else { return false }
            return host[host.index(after: host.startIndex)..<end] == "::1"
        }
        if let colon = host.lastIndex(of: ":") {
            guard host[host.index(after: colon)...].allSatisfy(\.isASCII), host[host.index(after: colon)...].allSatisfy(\.isNumber) else { return false }
            host = host[..<colon]
        }
        if host == "localhost" { return true }
        var a = in_addr()
        return inet_pton(AF_INET, String(host), &a) == 1 && UInt32(bigEndian: a.s_addr) >> 24 == 127
    }

    /// An Origin (`scheme://host[:port]`) naming this machine.
    static func isLoopbackOrigin(_ origin: String) -> Bool {
        for scheme in ["http://", "https://"] where origin.lowercased().hasPrefix(scheme) {
            return isLoopbackName(String(origin.dropFirst(scheme.count)))
        }
        return false
    }
}
