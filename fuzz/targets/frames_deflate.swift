// Fuzz target: WebSocketReader with permessage-deflate (RFC 7692): compressed messages
// (RSV1 on the first frame) inflated by an Inflater under a small message cap, so corrupt
// streams and compression bombs are both reachable with short inputs.
//
// The input is the byte stream a client sends after negotiating permessage-deflate. The
// input's length picks the context mode (odd: client_no_context_takeover, the inflater resets
// after each message; even: one LZ77 window across messages). It is fed whole, cut in two at
// a position derived from the first byte, and byte by byte (inputs up to 512 bytes), each to a
// fresh reader and inflater: same events, same error. Every inflated message must stay under
// the cap, and must survive Deflater → Inflater unchanged. WebSocketError (including
// invalidCompressedData and messageTooBig) is a valid outcome.

private let maxMessageSize = 1024

private func makeReader(noContextTakeover: Bool) -> WebSocketReader {
    guard let inflater = Inflater(noContextTakeover: noContextTakeover) else {
        fuzzFail("inflateInit2 failed")
    }
    return WebSocketReader(maxMessageSize: maxMessageSize, requireMask: true, inflater: inflater)
}

/// Each message compressed the way the hub compresses (Deflater, trailer stripped) and inflated
/// by a fresh Inflater must come back as it was.
private func checkRecompression(_ events: [WebSocketEvent]) {
    var deflater: Deflater?
    var inflater: Inflater?
    for case .message(_, let payload) in events {
        if deflater == nil {
            var p = DeflateParameters()
            p.serverNoContextTakeover = true
            deflater = Deflater(parameters: p)
            inflater = Inflater(noContextTakeover: true)
        }
        guard let deflater, let inflater else { fuzzFail("deflateInit2/inflateInit2 failed") }
        let compressed = deflater.deflate(payload)
        do {
            let back = try inflater.inflate(compressed, limit: maxMessageSize)
            fuzzCheck(back == payload, "deflate then inflate changed a \(payload.count)-byte message")
        } catch {
            fuzzFail("our own deflated message refused: \(error)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let selector = size > 0 ? data[0] : 0
    let noContextTakeover = size & 1 == 1

    let whole = feedThreeWays(input, selector: selector, maxMessageSize: maxMessageSize, bytewiseLimit: 512) {
        makeReader(noContextTakeover: noContextTakeover)
    }

    checkReencoding(whole.events, maxMessageSize: maxMessageSize)
    checkRecompression(whole.events)
    return 0
}
