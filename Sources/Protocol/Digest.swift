import COpenSSL

/// A one-shot digest whose algorithm is fetched from OpenSSL once. OpenSSL 3's `SHA1()`, and
/// `EVP_Digest` given `EVP_sha256()`, looked the algorithm up by name on every call (1.0 µs
/// against 0.4 µs for the 60 bytes of a WebSocket handshake). SHA-1: the handshake's accept
/// value and the cluster's Redis script names; SHA-256: an HMAC key longer than a block.
/// `@unchecked Sendable`: the fetched EVP_MD is only read after init, which OpenSSL allows
/// from any thread.
public struct Digest: @unchecked Sendable {
    /// The fetched algorithm (nil when OpenSSL lacks it): HMAC keys its states with it too.
    let md: OpaquePointer?
    /// Bytes of a digest.
    public let size: Int

    private init(_ name: String, size: Int) {
        md = EVP_MD_fetch(nil, name, nil)
        self.size = size
    }

    public static let sha1 = Digest("SHA1", size: 20)
    public static let sha256 = Digest("SHA256", size: 32)

    /// The digest of `bytes`; nil when OpenSSL cannot hash.
    public func hash(_ bytes: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: size)
        let ok = bytes.withUnsafeBytes { data in out.withUnsafeMutableBytes { hash(data, into: $0) } }
        return ok ? out : nil
    }

    /// Writes the digest of `data` to the start of `out`; false when OpenSSL cannot hash.
    func hash(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Bool {
        guard out.count >= size, let md else { return false }
        var length: UInt32 = 0
        return EVP_Digest(data.baseAddress, data.count, out.baseAddress?.assumingMemoryBound(to: UInt8.self), &length, md, nil) == 1
            && Int(length) == size
    }
}
