import COpenSSL
import Foundation

// Development secrets: on first run without --jwt-secret / --bridge-key the hub generates
// both, stores them in <data>/dev-secrets (mode 0600) and prints them; later runs reuse them.
enum DevSecrets {
    struct Loaded {
        var jwtSecret: String
        var bridgeKey: String
        var generated: Bool
        var path: String
    }

    static func loadOrCreate(dataDir: String) throws -> Loaded {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        let path = (dataDir as NSString).appendingPathComponent("dev-secrets")
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            var values: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { values[String(kv[0])] = String(kv[1]) }
            }
            if let j = values["jwt_secret"], let b = values["bridge_key"], j.count >= 16, b.count >= 16 {
                return Loaded(jwtSecret: j, bridgeKey: b, generated: false, path: path)
            }
        }
        let loaded = Loaded(jwtSecret: randomHex(32), bridgeKey: randomHex(24), generated: true, path: path)
        let text = "jwt_secret=\(loaded.jwtSecret)\nbridge_key=\(loaded.bridgeKey)\n"
        guard fm.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        return loaded
    }

    static func randomHex(_ bytes: Int) -> String {
        var buf = [UInt8](repeating: 0, count: bytes)
        guard RAND_bytes(&buf, Int32(bytes)) == 1 else {
            fatalError("OpenSSL RAND_bytes failed: no secure randomness available") // not input-reachable
        }
        return buf.map { String(format: "%02x", $0) }.joined()
    }
}
