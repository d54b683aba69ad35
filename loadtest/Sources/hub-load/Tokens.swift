import Foundation
import Protocol

// Real tokens, signed here: HS256 with the hub's secret, one per client user c<i>.
enum Tokens {
    /// The secret from --jwt-secret, or the `jwt_secret=` line of <data>/dev-secrets.
    static func secret(_ o: ChatOptions) throws(UsageError) -> String {
        if let s = o.jwtSecret { return s }
        let path = (o.dataDir! as NSString).appendingPathComponent("dev-secrets")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw UsageError(message: "cannot read \(path) (start the hub with --data first, or pass --jwt-secret)")
        }
        for line in text.split(separator: "\n") where line.hasPrefix("jwt_secret=") {
            return String(line.dropFirst("jwt_secret=".count))
        }
        throw UsageError(message: "no jwt_secret= line in \(path)")
    }

    static func client(_ id: String, secret: String, ttl: Int64 = 3600) -> String {
        let exp = Int64(Date().timeIntervalSince1970) + ttl
        return JWTSigner(secret: Array(secret.utf8))
            .sign(TokenClaims(sub: id, role: .client, name: "Load \(id)", exp: exp))
    }
}
