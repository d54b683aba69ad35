import COpenSSL

// A server TLS configuration (certificate chain, key, TLS 1.2 and 1.3 only) loaded from PEM
// files. A final class because it owns the SSL_CTX; shared read-only by every loop.
// `@unchecked Sendable`: after init the SSL_CTX is only used to create sessions, which
// OpenSSL makes thread-safe.
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
        _ = montrose_SSL_CTX_set_min_proto_version(ctx, montrose_TLS1_2_VERSION())
        _ = montrose_SSL_CTX_set_options(ctx, montrose_SSL_OP_NO_RENEGOTIATION() | montrose_SSL_OP_NO_COMPRESSION())
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

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        ERR_clear_error()
        return cString(buf)
    }
}
