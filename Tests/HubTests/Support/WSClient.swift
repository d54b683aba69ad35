import COpenSSL
import Foundation
import Glibc
import Protocol
import XCTest

// The project's own blocking WebSocket (and plain HTTP) client for tests: real sockets,
// optional TLS (OpenSSL, no verification: tests use a throwaway self-signed certificate),
// optional permessage-deflate, and raw frame access so tests can break rules on purpose.

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct ReceivedFrame {
    var fin: Bool
    var rsv1: Bool
    var opcode: Opcode
    var payload: [UInt8]
    var closeCode: UInt16? {
        opcode == .close && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
    }
    var closeReason: String {
        opcode == .close && payload.count > 2 ? String(decoding: payload[2...], as: UTF8.self) : ""
    }
    var text: String { String(decoding: payload, as: UTF8.self) }
}

final class TestSocket {
    let fd: Int32
    private var ssl: OpaquePointer?
    private var ctx: OpaquePointer?
    /// Received bytes not yet consumed start at `inboxStart`: one buffer, so taking a frame off
    /// the front does not copy what arrived after it.
    private var inbox: [UInt8] = []
    private var inboxStart = 0
    private var scratch = [UInt8](repeating: 0, count: 65536)

    /// What arrived and was not read yet (a caller can hand it on, or put bytes back).
    var pending: [UInt8] {
        get { Array(inbox[inboxStart...]) }
        set { inbox = newValue; inboxStart = 0 }
    }

    /// `receiveBuffer` is set before connecting, so the window the peer sees is small too.
    init(port: Int, host: String = "127.0.0.1", tls: Bool = false, timeout: TimeInterval = 5,
         receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket failed") }
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw TestError("connect to \(port) failed: errno \(errno)") }
        setTimeout(timeout)
        if tls {
            ctx = SSL_CTX_new(TLS_client_method())
            ssl = SSL_new(ctx)
            SSL_set_fd(ssl, fd)
            guard SSL_connect(ssl) == 1 else { throw TestError("TLS handshake failed") }
        }
    }

    deinit {
        if let ssl { SSL_free(ssl) }
        if let ctx { SSL_CTX_free(ctx) }
        close(fd)
    }

    /// The TLS peer certificate's subject ("/CN=…"), nil without TLS.
    var peerSubject: String? {
        guard let ssl, let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(cert) }
        guard let name = X509_get_subject_name(cert) else { return nil }
        var buf = [CChar](repeating: 0, count: 256)
        X509_NAME_oneline(name, &buf, Int32(buf.count))
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func setTimeout(_ t: TimeInterval) {
        var tv = timeval(tv_sec: Int(t), tv_usec: Int((t - Double(Int(t))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func write(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n: Int = bytes[off...].withUnsafeBytes { p in
                if let ssl { return Int(SSL_write(ssl, p.baseAddress, Int32(p.count))) }
                return send(fd, p.baseAddress, p.count, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw TestError("write failed (errno \(errno))") }
            off += n
        }
    }

    func write(_ s: String) throws { try write(Array(s.utf8)) }

    /// Reads whatever arrives next; [] on EOF; throws on timeout.
    func readSome() throws -> [UInt8] {
        if inboxStart == inbox.count { guard try receive() > 0 else { return [] } }
        defer { inbox.removeAll(keepingCapacity: true); inboxStart = 0 }
        return Array(inbox[inboxStart...])
    }

    /// Reads exactly `count` bytes.
    func read(exactly count: Int) throws -> [UInt8] {
        while inbox.count - inboxStart < count {
            if try receive() == 0 { throw TestError("connection closed after \(inbox.count - inboxStart) of \(count) bytes") }
        }
        let out = Array(inbox[inboxStart..<inboxStart + count])
        inboxStart += count
        if inboxStart == inbox.count {
            inbox.removeAll(keepingCapacity: true)
            inboxStart = 0
        }
        return out
    }

    /// One read from the socket, appended to the inbox; the byte count (0 on EOF or reset).
    private func receive() throws -> Int {
        if inboxStart > 0 && inboxStart * 2 >= inbox.count {
            inbox.removeFirst(inboxStart)
            inboxStart = 0
        }
        let n: Int = scratch.withUnsafeMutableBytes { p in
            if let ssl { return Int(SSL_read(ssl, p.baseAddress, Int32(p.count))) }
            return recv(fd, p.baseAddress, p.count, 0)
        }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw TestError("timed out waiting for data") }
            if errno == ECONNRESET { return 0 }
            throw TestError("read failed (errno \(errno))")
        }
        inbox.append(contentsOf: scratch[0..<n])
        return n
    }

    /// Reads an HTTP response head and its Content-Length body.
    func readHTTPResponse() throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        var data: [UInt8] = []
        while true {
            if let r = data.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: data[..<r.lowerBound], as: UTF8.self)
                var rest = Array(data[r.upperBound...])
                let lines = head.components(separatedBy: "\r\n")
                let status = Int(lines[0].split(separator: " ")[1]) ?? 0
                var headers: [String: String] = [:]
                for line in lines.dropFirst() {
                    if let c = line.firstIndex(of: ":") {
                        headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                while rest.count < length {
                    let more = try readSome()
                    if more.isEmpty { break }
                    rest.append(contentsOf: more)
                }
                if rest.count > length { pending = Array(rest[length...]); rest = Array(rest[..<length]) }
                return (status, headers, rest)
            }
            let chunk = try readSome()
            if chunk.isEmpty { throw TestError("connection closed before a full response head; got \(String(decoding: data, as: UTF8.self))") }
            data.append(contentsOf: chunk)
        }
    }

    /// True when the peer closed the connection (EOF or reset) within the timeout.
    func waitForEOF() -> Bool {
        while true {
            guard let chunk = try? readSome() else { return false }
            if chunk.isEmpty { return true }
        }
    }
}

final class WSClient {
    let socket: TestSocket
    let responseHeaders: [String: String]
    private var inflater: Inflater?
    private var deflater: Deflater?

    /// Opens a WebSocket with the handshake; `extensions` is sent as Sec-WebSocket-Extensions.
    init(port: Int, path: String = "/echo", tls: Bool = false, extensions: String? = nil,
         extraHeaders: [String] = [], timeout: TimeInterval = 5, receiveBuffer: Int32? = nil) throws {
        socket = try TestSocket(port: port, tls: tls, timeout: timeout, receiveBuffer: receiveBuffer)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var req = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        req += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if let extensions { req += "Sec-WebSocket-Extensions: \(extensions)\r\n" }
        for h in extraHeaders { req += h + "\r\n" }
        req += "\r\n"
        try socket.write(req)
        let response = try socket.readHTTPResponse()
        guard response.status == 101 else {
            throw TestError("expected 101, got \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        }
        guard response.headers["sec-websocket-accept"] == Handshake.acceptValue(forKey: key) else {
            throw TestError("wrong Sec-WebSocket-Accept")
        }
        responseHeaders = response.headers
        if let ext = response.headers["sec-websocket-extensions"], ext.hasPrefix("permessage-deflate") {
            let clientNoContext = ext.contains("client_no_context_takeover")
            var p = DeflateParameters()
            p.serverNoContextTakeover = clientNoContext // our compressor resets when we promised to
            deflater = Deflater(parameters: p)
            inflater = Inflater(noContextTakeover: ext.contains("server_no_context_takeover"))
        }
    }

    var deflateNegotiated: Bool { deflater != nil }

    /// Sends one frame; masked unless told otherwise. Compresses when `compress` and negotiated.
    func sendFrame(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false,
                   masked: Bool = true, rsv2: Bool = false) throws {
        var frame: [UInt8] = [opcode.rawValue | (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0)]
        let m: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            frame.append(m | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame.append(m | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(m | 127)
            for i in (0..<8).reversed() { frame.append(UInt8((payload.count >> (8 * i)) & 0xFF)) }
        }
        if masked {
            let key = (0..<4).map { _ in UInt8.random(in: 0...255) }
            frame += key
            frame += payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
        } else {
            frame += payload
        }
        try socket.write(frame)
    }

    func send(_ text: String, compress: Bool = false) throws {
        try sendMessage(.text, Array(text.utf8), compress: compress)
    }

    func sendMessage(_ opcode: Opcode, _ payload: [UInt8], compress: Bool = false) throws {
        if compress, let deflater {
            try sendFrame(opcode, deflater.deflate(payload), rsv1: true)
        } else {
            try sendFrame(opcode, payload)
        }
    }

    func readFrame() throws -> ReceivedFrame {
        let head = try socket.read(exactly: 2)
        var length = Int(head[1] & 0x7F)
        if length == 126 {
            let b = try socket.read(exactly: 2)
            length = Int(b[0]) << 8 | Int(b[1])
        } else if length == 127 {
            let b = try socket.read(exactly: 8)
            length = b.reduce(0) { $0 << 8 | Int($1) }
        }
        guard head[1] & 0x80 == 0 else { throw TestError("server frame was masked") }
        let payload = length > 0 ? try socket.read(exactly: length) : []
        return ReceivedFrame(fin: head[0] & 0x80 != 0, rsv1: head[0] & 0x40 != 0,
                             opcode: Opcode(head[0] & 0x0F), payload: payload)
    }

    /// The next data message (fragments joined, inflated), or a close frame.
    func readMessage() throws -> ReceivedFrame {
        var message: ReceivedFrame?
        while true {
            let f = try readFrame()
            if f.opcode.isControl {
                if f.opcode == .close { return f }
                continue
            }
            if var m = message {
                m.payload += f.payload
                m.fin = f.fin
                message = m
            } else {
                message = f
            }
            if let m = message, m.fin {
                var out = m
                if m.rsv1, let inflater { out.payload = try inflater.inflate(m.payload, limit: 64 << 20) }
                return out
            }
        }
    }

    func readText() throws -> String { try readMessage().text }

    /// Reads until a close frame arrives and returns it (data messages before it are skipped).
    func readClose() throws -> ReceivedFrame {
        while true {
            let f = try readFrame()
            if f.opcode == .close { return f }
        }
    }

    func close(code: UInt16 = 1000) throws {
        try sendFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)])
    }
}
