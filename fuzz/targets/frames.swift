// Fuzz target: WebSocketReader without compression (RFC 6455 frames from a client: masked,
// fragmented messages with interleaved control frames, UTF-8 checked as text arrives), and
// the unmasking routine.
//
// The input is the byte stream a client sends after the handshake. It is fed to a reader that
// requires masking with a 1000-byte message cap: whole, cut in two at a position derived from
// the first byte, and byte by byte (inputs up to 1 KiB). The cut must change nothing: same
// events, same error, same state. Every event must obey the protocol's rules, and the events
// written back with FrameEncoder must read back the same. A reader that does not require
// masking (the load client's side) gets the stream too. WebSocketError is a valid outcome.

private let maxMessageSize = 1000

/// The XOR a masked payload goes through, one byte at a time (RFC 6455 §5.3).
private func checkUnmask(_ input: UnsafeRawBufferPointer) {
    guard input.count >= 5 else { return }
    let key = input.loadUnaligned(as: UInt32.self)       // the key bytes in wire order
    let keyBytes = Array(input[0..<4])
    let offset = Int(input[4] & 7)
    var fast = Array(input[5...])
    fast.withUnsafeMutableBytes { buf in
        if let base = buf.baseAddress { unmask(base, count: buf.count, key: key, offset: offset) }
    }
    for (i, b) in input[5...].enumerated() where fast[i] != b ^ keyBytes[(offset + i) & 3] {
        fuzzFail("unmask differs from the byte-wise XOR at \(i) (offset \(offset))")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let selector = size > 0 ? data[0] : 0

    let whole = feedThreeWays(input, selector: selector, maxMessageSize: maxMessageSize, bytewiseLimit: 1024) {
        WebSocketReader(maxMessageSize: maxMessageSize)
    }

    checkReencoding(whole.events, maxMessageSize: maxMessageSize)

    // Masking optional (frames from a server): other rules, same invariants.
    var lenient = WebSocketReader(maxMessageSize: maxMessageSize, requireMask: false)
    let unmasked = feedReader(&lenient, input, Feeding.split(size, at: splitPoint(selector, count: size)))
    checkEvents(unmasked.events, maxMessageSize: maxMessageSize)

    checkUnmask(input)
    return 0
}
