// The `Montrose-Signature` header of a webhook POST (docs/protocol.md "Webhooks"), as Stripe
// signs: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Pure: the time is passed in.
// The hub signs with `header`; `verify` is what a receiver does, kept here so the rule and its
// tests live beside the signing (and a Swift receiver can use it as is).
public enum WebhookSignature {
    public static let headerName = "Montrose-Signature"

    /// The header value for `body` sent at `timestamp` (unix seconds); nil for an empty secret.
    public static func header(secret: [UInt8], timestamp: Int64, body: [UInt8]) -> String? {
        guard let mac = HS256.mac(key: secret, signedPayload(timestamp: timestamp, body: body)[...]) else { return nil }
        return "t=\(timestamp),v1=\(hex(mac))"
    }

    public enum Rejection: Error, Equatable, Sendable {
        /// Not `t=…,v1=…` (a missing part, or a `t` that is not a number).
        case malformed
        /// No `v1` matches the body and `t` under the secret.
        case mismatch
        /// `t` is further from the receiver's clock than the tolerance: a replay, or a skewed clock.
        case outsideTolerance(ageSeconds: Int64)
    }

    /// Checks a received header: a `v1` must match, and `t` must be within `toleranceSeconds`
    /// of `now` (Stripe's default is 300). Several `v1` entries are allowed (a secret rotation).
    public static func verify(header: String, secret: [UInt8], body: [UInt8], now: Int64,
                              toleranceSeconds: Int64 = 300) -> Result<Int64, Rejection> {
        var timestamp: Int64?
        var macs: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return .failure(.malformed) }
            switch pair[0].trimmingSpaces {
            case "t": timestamp = Int64(pair[1].trimmingSpaces)
            case "v1": macs.append(String(pair[1].trimmingSpaces).lowercased())
            default: continue
            }
        }
        guard let t = timestamp, !macs.isEmpty else { return .failure(.malformed) }
        guard let expected = HS256.mac(key: secret, signedPayload(timestamp: t, body: body)[...]).map(hex),
              macs.contains(where: { constantTimeEqual($0, expected) }) else { return .failure(.mismatch) }
        let age = now - t
        guard abs(age) <= toleranceSeconds else { return .failure(.outsideTolerance(ageSeconds: age)) }
        return .success(t)
    }

    static func signedPayload(timestamp: Int64, body: [UInt8]) -> [UInt8] {
        Array("\(timestamp).".utf8) + body
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Compares without stopping at the first difference (no timing hint at the MAC).
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
