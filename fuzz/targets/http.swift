// Fuzz target: HTTPRequestParser (incremental HTTP/1.1 requests, RFC 9112), plus what the hub
// does with a parsed request (Handshake.accept with permessage-deflate negotiation, path,
// query and keep-alive).
//
// The input is the byte stream a client sends. It is fed whole, cut in two at a position
// derived from the first byte, byte by byte (inputs up to 1 KiB), and, for a quarter of the
// inputs that parse cleanly, repeated as a long pipelined stream (past the parser's 16 KiB
// compaction point). An incremental parser must not care how its input was cut: every feeding
// has to give the same requests, the same verdict (refused or not), the same bytes handed
// back after an upgrade request and the same state at the end (one allowance: see agree()).
// Refusals (HTTPError) are valid outcomes; only crashes and disagreements are bugs.

/// What one feeding of the stream produced.
private struct Outcome: Equatable {
    var requests: [HTTPRequest] = []
    /// A request was refused. The kind may differ with the cut (which limit trips first when a
    /// head is both too long and incomplete), so only the fact is compared.
    var refused = false
    /// Bytes after an upgrade request, as the hub takes them to start reading frames.
    var afterUpgrade: [UInt8]?
    var bufferedCount = 0
    var wantsContinue = false
    var isIdle = true
}

/// Whether two feedings of the same bytes agree. They must be identical, with one exception:
/// a limit can trip as soon as enough of a head has arrived (a request line over the limit
/// with no line end yet) while the other feeding, holding the whole head so far, waits for
/// the rest of it before judging. Then one has refused and the other is still mid-request,
/// after the same requests; it refuses too once the head ends or outgrows maxHeaderBytes.
private func agree(_ a: Outcome, _ b: Outcome) -> Bool {
    if a == b { return true }
    guard a.requests == b.requests, a.afterUpgrade == nil, b.afterUpgrade == nil, a.refused != b.refused else {
        return false
    }
    let waiting = a.refused ? b : a
    return waiting.bufferedCount > 0 && !waiting.isIdle
}

/// Small limits, so that every limit is reachable with short inputs.
private let smallLimits = HTTPLimits(maxRequestLine: 256, maxHeaderBytes: 1024, maxHeaderCount: 8,
                                     maxBodyBytes: 2048)

private let handshakeOptions = HandshakeOptions(allowedOrigins: [],
                                                deflate: DeflatePolicy(enabled: true, forceServerNoContextTakeover: false))
private let strictHandshakeOptions = HandshakeOptions(allowedOrigins: ["https://example.com"],
                                                      deflate: DeflatePolicy(enabled: true, forceServerNoContextTakeover: true))

private func feed(_ input: UnsafeRawBufferPointer, _ pieces: [Range<Int>], limits: HTTPLimits,
                  inspect: Bool) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var out = Outcome()
    for piece in pieces {
        parser.append(UnsafeRawBufferPointer(rebasing: input[piece]))
        while true {
            let request: HTTPRequest?
            do {
                request = try parser.next()
            } catch {
                // What the hub sends back for it must build.
                _ = HTTPResponse.error(error).encoded()
                out.refused = true
                return out
            }
            guard let request else { break }
            check(request, limits: limits)
            if inspect { exercise(request) }
            out.requests.append(request)
            if Handshake.isUpgradeRequest(request) {
                // The hub stops parsing HTTP here: the rest of the stream is WebSocket frames.
                var rest = parser.takeBuffered()
                rest.append(contentsOf: input[piece.upperBound...])
                out.afterUpgrade = rest
                fuzzCheck(parser.bufferedCount == 0, "parser not empty after takeBuffered")
                return out
            }
        }
    }
    out.bufferedCount = parser.bufferedCount
    out.wantsContinue = parser.wantsContinue
    out.isIdle = parser.isIdle
    return out
}

/// What every accepted request must satisfy, whatever the input.
private func check(_ r: HTTPRequest, limits: HTTPLimits) {
    fuzzCheck(!r.method.isEmpty, "empty method")
    // Origin form, or an absolute-form target turned into it (its authority the one Host);
    // CONNECT and OPTIONS * are refused.
    fuzzCheck(r.target.hasPrefix("/"), "target \(r.target.debugDescription)")
    fuzzCheck(r.versionMinor == 0 || r.versionMinor == 1, "version 1.\(r.versionMinor)")
    fuzzCheck(r.headers.count <= limits.maxHeaderCount, "\(r.headers.count) headers over the limit")
    fuzzCheck(r.body.count <= limits.maxBodyBytes, "body of \(r.body.count) over the limit")
    // "METHOD SP target SP HTTP/1.x": the request line the parser measured against its limit.
    fuzzCheck(r.method.utf8.count + r.target.utf8.count + 10 <= limits.maxRequestLine,
              "request line over the limit")
    for h in r.headers {
        fuzzCheck(!h.name.isEmpty && h.name == h.name.lowercased(), "header name \(h.name.debugDescription)")
        fuzzCheck(!h.value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }),
                  "control character in header value")
    }
}

/// The request accessors and the upgrade verdict the hub computes from a request.
private func exercise(_ r: HTTPRequest) {
    _ = r.path
    _ = r.query
    _ = r.keepAlive
    _ = r.header("Host")
    for options in [handshakeOptions, strictHandshakeOptions] {
        switch Handshake.accept(r, options: options) {
        case .success(let accepted):
            let text = accepted.response
            fuzzCheck(text.count >= 4 && Array(text.suffix(4)) == Array("\r\n\r\n".utf8), "101 response not terminated")
            if let p = accepted.deflate {
                fuzzCheck((8...15).contains(p.serverMaxWindowBits), "server_max_window_bits \(p.serverMaxWindowBits)")
                if let c = p.clientMaxWindowBits { fuzzCheck((8...15).contains(c), "client_max_window_bits \(c)") }
            }
        case .failure(let refusal):
            _ = refusal.response.encoded()
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let selector = size > 0 ? data[0] : 0

    // Default limits, whole: what a hub connection does with a single read.
    _ = feed(input, Feeding.whole(size), limits: HTTPLimits(), inspect: true)

    // Small limits, every way of cutting.
    let whole = feed(input, Feeding.whole(size), limits: smallLimits, inspect: false)
    let cut = splitPoint(selector, count: size)
    let split = feed(input, Feeding.split(size, at: cut), limits: smallLimits, inspect: false)
    fuzzCheck(agree(whole, split), "whole and split at \(cut) differ: \(whole) vs \(split)")
    if size <= 1024 {
        let bytewise = feed(input, Feeding.byteByByte(size), limits: smallLimits, inspect: false)
        fuzzCheck(agree(whole, bytewise), "whole and byte-by-byte differ: \(whole) vs \(bytewise)")
    }

    // A clean stream (complete requests, nothing left over) repeated back to back must give the
    // same requests again and again, across the buffer's compaction (start > 16 KiB).
    // (isIdle: between requests, not only with nothing buffered; a chunked body can be pending
    // with every byte so far consumed.)
    if !whole.refused, whole.afterUpgrade == nil, whole.isIdle, !whole.requests.isEmpty,
       (Int(selector) ^ size) & 3 == 0 {
        let repeats = 20_000 / max(size, 1) + 2
        var stream: [UInt8] = []
        stream.reserveCapacity(repeats * size)
        for _ in 0..<repeats { stream.append(contentsOf: input) }
        let piece = 1 + (Int(selector) &* 37 &+ size) % 3000
        let pipelined = stream.withUnsafeBytes { all in
            feed(all, Feeding.pieces(all.count, of: piece), limits: smallLimits, inspect: false)
        }
        fuzzCheck(!pipelined.refused, "a repeated clean stream was refused")
        fuzzCheck(pipelined.requests.count == whole.requests.count * repeats,
                  "\(pipelined.requests.count) requests from \(repeats) copies of \(whole.requests.count)")
        for (i, r) in pipelined.requests.enumerated() where r != whole.requests[i % whole.requests.count] {
            fuzzFail("request \(i) of the repeated stream differs")
        }
        fuzzCheck(pipelined.bufferedCount == 0 && pipelined.isIdle, "repeated stream left bytes behind")
    }
    return 0
}
