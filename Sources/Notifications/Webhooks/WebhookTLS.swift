import COpenSSL
import Glibc

// TLS for https:// webhooks: a client context made once at start (the trusted CAs loaded
// then, so a bad --webhook-ca is refused before the hub serves), and one session per attempt
// over the attempt's non-blocking socket, every handshake, write and read step under the
// attempt's deadlines. The peer must present a certificate that chains to a trusted CA and
// names the URL's host (SSL_set1_host: DNS names, or an IP address for an IP host); TLS 1.2
// at least; SNI carries the host name.
//
// `@unchecked Sendable`: after init the SSL_CTX is only used to create sessions, which OpenSSL
// makes thread-safe (the same rule as the server's TLSContext).
public final class WebhookTLS: @unchecked Sendable {
    let ctx: OpaquePointer

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// `caFile`: a PEM bundle trusted instead of the system's CAs (nil: the system's).
    public init(caFile: String?) throws(LoadError) {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw LoadError(description: "cannot create a TLS client context: \(Self.lastError())")
        }
        self.ctx = ctx
        _ = montrose_SSL_CTX_set_min_proto_version(ctx, montrose_TLS1_2_VERSION())
        _ = montrose_SSL_CTX_set_options(ctx, montrose_SSL_OP_NO_COMPRESSION() | montrose_SSL_OP_NO_RENEGOTIATION())
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        if let caFile {
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw LoadError(description: "cannot read the CA file \(caFile): \(Self.lastError())")
            }
        } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
            throw LoadError(description: "cannot load the system's CA certificates: \(Self.lastError())")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "no detail from OpenSSL" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One TLS session over a connected non-blocking socket. Not Sendable: it lives and dies inside
/// one attempt.
final class WebhookTLSSession {
    private let ssl: OpaquePointer
    private let fd: Int32

    init(_ tls: WebhookTLS, fd: Int32, host: String) throws(WebhookHTTPClient.Failure) {
        ERR_clear_error()
        guard let ssl = SSL_new(tls.ctx) else { throw .tls("cannot create a TLS session: \(WebhookTLS.lastError())") }
        self.ssl = ssl
        self.fd = fd
        SSL_set_fd(ssl, fd)
        // SSL_set1_host checks DNS names; an IP literal is checked as an address instead.
        var a4 = in_addr(), a6 = in6_addr()
        let isIP = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1
        if isIP {
            guard let param = SSL_get0_param(ssl), X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1 else {
                throw .tls("cannot set the address to verify")
            }
        } else {
            guard SSL_set1_host(ssl, host) == 1 else { throw .tls("cannot set the host name to verify") }
            _ = montrose_SSL_set_tlsext_host_name(ssl, host)
        }
    }

    deinit { SSL_free(ssl) }

    enum Step { case done(Int), wantRead, wantWrite, closed }

    /// Maps an SSL call's result: progress, the direction to wait for, or a typed failure.
    private func step(_ rc: Int32) throws(WebhookHTTPClient.Failure) -> Step {
        if rc > 0 { return .done(Int(rc)) }
        let e = SSL_get_error(ssl, rc)
        switch e {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0: return .closed
        default:
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                throw .tls("certificate not trusted: \(String(cString: X509_verify_cert_error_string(verify)))")
            }
            throw .tls(WebhookTLS.lastError())
        }
    }

    func handshake() throws(WebhookHTTPClient.Failure) -> Step {
        ERR_clear_error()
        return try step(SSL_connect(ssl))
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(WebhookHTTPClient.Failure) -> Step {
        ERR_clear_error()
        return try step(SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max)))))
    }

    func read(_ into: UnsafeMutableRawBufferPointer) throws(WebhookHTTPClient.Failure) -> Step {
        ERR_clear_error()
        return try step(SSL_read(ssl, into.baseAddress, Int32(min(into.count, Int(Int32.max)))))
    }
}
