import Foundation
import Protocol

// Real tokens, signed here: HS256 with the hub's secret, one per client user.
enum Tokens {
    /// The secret from --jwt-secret, or the `jwt_secret=` line of <data>/dev-secrets.
    static func secret(_ o: ChatOptions) throws(UsageError) -> String {
        if let s = o.jwtSecret { return s }
        return try devSecret("jwt_secret", dataDir: o.dataDir, flag: "--jwt-secret")
    }

    /// The `<name>=` line of <dataDir>/dev-secrets (what a development-mode hub writes on its
    /// first start); `flag` is the option that would have given it directly.
    static func devSecret(_ name: String, dataDir: String?, flag: String) throws(UsageError) -> String {
        guard let dataDir else { throw UsageError(message: "give \(flag) or --data DIR") }
        let path = (dataDir as NSString).appendingPathComponent("dev-secrets")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError(message: "cannot read \(path) (start the hub with --data first, or pass \(flag))")
        }
        for line in text.split(separator: "\n") where line.hasPrefix(name + "=") {
            return String(line.dropFirst(name.count + 1))
        }
        throw UsageError(message: "no \(name)= line in \(path)")
    }

    static func client(_ id: String, secret: String, ttl: Int64 = 3600) -> String {
        let exp = Int64(Date().timeIntervalSince1970) + ttl
        return JWTSigner(secret: Array(secret.utf8))
            .sign(TokenClaims(sub: id, role: .client, name: "Load \(id)", exp: exp))
    }

    /// The hub's WebSocket path with the token in the query: the hub authenticates at the
    /// upgrade and answers `{"id":null,"ok":true,...}` as the first frame, no `auth` op needed.
    static func clientPath(_ path: String, user: String, secret: String) -> String {
        path + (path.contains("?") ? "&" : "?") + "token=" + client(user, secret: secret)
    }
}
