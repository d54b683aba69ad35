import COpenSSL

// One connection's TLS state through memory BIOs: ciphertext in, plaintext out and back, no
// socket inside, so the loop keeps owning the fd and the output queue (swift-nio-ssl's shape).
// Not Sendable: it lives on its connection's loop.
final class TLSSession {
    private let ssl: OpaquePointer
    private let rbio: OpaquePointer   // ciphertext from the peer
    private let wbio: OpaquePointer   // ciphertext to the peer

    enum ReadResult {
        case bytes(Int)
        case needMore
        case closed          // close_notify received
        case failed(String)
    }

    init?(context: TLSContext) {
        guard let ssl = SSL_new(context.ctx) else { return nil }
        guard let r = BIO_new(BIO_s_mem()), let w = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            return nil
        }
        self.ssl = ssl
        rbio = r
        wbio = w
        SSL_set_bio(ssl, r, w)   // the SSL now owns both BIOs
        SSL_set_accept_state(ssl)
    }

    deinit { SSL_free(ssl) }

    /// Ciphertext read from the socket.
    func feed(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        _ = BIO_write(rbio, base, Int32(bytes.count))
    }

    /// Decrypts into `buffer`; drives the handshake as a side effect.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        ERR_clear_error()
        let n = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
        if n > 0 { return .bytes(Int(n)) }
        switch SSL_get_error(ssl, n) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .needMore
        case SSL_ERROR_ZERO_RETURN: return .closed
        default: return .failed(TLSContext.lastError())
        }
    }

    /// Encrypts plaintext into the outgoing BIO (memory BIOs take all of it).
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        ERR_clear_error()
        return SSL_write(ssl, base, Int32(bytes.count)) == Int32(bytes.count)
    }

    /// Queues a close_notify alert.
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
    }

    /// Ciphertext waiting to go to the socket, if any.
    func takeCiphertext() -> Bytes? {
        let pending = montrose_BIO_pending(wbio)
        guard pending > 0 else { return nil }
        return Bytes.make(count: pending) { dst in
            var got = 0
            while got < pending {
                let n = BIO_read(wbio, dst + got, Int32(pending - got))
                if n <= 0 { break }
                got += Int(n)
            }
        }
    }
}
