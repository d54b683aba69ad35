import COpenSSL

// A server TLS configuration (certificate chain and key loaded from PEM files, and the profile
// below). A final class because it owns the SSL_CTX; shared read-only by every loop. Start and
// SIGHUP's reload both come through `init`, so a reloaded context has the same profile.
// `@unchecked Sendable`: after init the SSL_CTX is only used to create sessions, which
// OpenSSL makes thread-safe.
//
// The profile is Mozilla's "intermediate" (server-side TLS guidelines 6.0): TLS 1.3, and TLS 1.2
// with ECDHE key exchange and AEAD ciphers only (no CBC, so no Lucky13-style padding oracles;
// no RSA key exchange, so forward secrecy always). DHE is left out, as 6.0 does: every client
// this profile serves has ECDHE, and DHE would need its own parameters to be safe.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(certificateFile: String, keyFile: String) throws(LoadError) {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw LoadError(description: "cannot create a TLS context: \(TLSContext.lastError())")
        }
        self.ctx = ctx
        try Self.applyProfile(ctx)
        // Release the 34 KiB read and write buffers of idle sessions.
        _ = montrose_SSL_CTX_set_mode(ctx, montrose_SSL_MODE_RELEASE_BUFFERS())
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateFile) == 1 else {
            throw LoadError(description: "cannot read TLS certificate \(certificateFile): \(TLSContext.lastError())")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, keyFile, SSL_FILETYPE_PEM) == 1 else {
            let why = TLSContext.lastError()
            if why.contains("mismatch") {
                throw LoadError(description: "TLS key \(keyFile) does not match certificate \(certificateFile)")
            }
            throw LoadError(description: "cannot read TLS key \(keyFile): \(why)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw LoadError(description: "TLS key \(keyFile) does not match certificate \(certificateFile)")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// TLS 1.2 suites, in Mozilla's order: ECDHE (ECDSA or RSA certificate) with AES-GCM or
    /// ChaCha20-Poly1305.
    static let tls12Ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        + "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        + "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    /// TLS 1.3 suites: OpenSSL's default three, in Mozilla's order.
    static let tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// Key exchange groups, in Mozilla's order; the hybrid post-quantum X25519MLKEM768 first
    /// where the OpenSSL in use has it (3.5 and later), as 6.0 lists it.
    static let groups = "X25519:prime256v1:secp384r1"
    static let groupsWithMLKEM = "X25519MLKEM768:" + groups

    /// Versions, suites, groups and options; throws only if OpenSSL refuses the lists.
    private static func applyProfile(_ ctx: OpaquePointer) throws(LoadError) {
        _ = montrose_SSL_CTX_set_min_proto_version(ctx, montrose_TLS1_2_VERSION())
        guard SSL_CTX_set_cipher_list(ctx, tls12Ciphers) == 1, SSL_CTX_set_ciphersuites(ctx, tls13Suites) == 1 else {
            throw LoadError(description: "cannot set the TLS cipher suites: \(lastError())")
        }
        if montrose_SSL_CTX_set1_groups_list(ctx, groupsWithMLKEM) != 1 {
            ERR_clear_error()
            guard montrose_SSL_CTX_set1_groups_list(ctx, groups) == 1 else {
                throw LoadError(description: "cannot set the TLS key exchange groups: \(lastError())")
            }
        }
        // The server's order decides, which testssl.sh and SSL Labs ask for (Mozilla leaves it
        // to the client, as every suite here is strong). PRIORITIZE_CHACHA keeps what the
        // client's order was for: one that lists ChaCha20 first (a phone without AES
        // instructions) gets ChaCha20; everyone else gets AES-128-GCM.
        // No renegotiation (a client-initiated one is a cheap way to burn server CPU), no
        // compression (CRIME). Session tickets stay on: testssl.sh reports them without a
        // rating, and a reconnecting browser skips a full handshake.
        _ = montrose_SSL_CTX_set_options(ctx, montrose_SSL_OP_NO_RENEGOTIATION() | montrose_SSL_OP_NO_COMPRESSION()
            | montrose_SSL_OP_CIPHER_SERVER_PREFERENCE() | montrose_SSL_OP_PRIORITIZE_CHACHA())
    }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        ERR_clear_error()
        return cString(buf)
    }
}
