import CZlib

// The permessage-deflate decompressor for one connection (RFC 7692 §7.2.2). A final class
// because it owns a zlib stream. Output is capped: a message that would inflate past the
// limit is refused with 1009 as soon as the cap is crossed, so a compression bomb never
// expands in memory.
public final class Inflater {
    private var stream = z_stream()
    private let resetAfterMessage: Bool
    private static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]
    private static let chunk = 16 * 1024

    /// `noContextTakeover`: the peer resets its compressor after each message, so we reset too.
    public init?(noContextTakeover: Bool) {
        resetAfterMessage = noContextTakeover
        // Window 15 inflates anything compressed with a window of 8 to 15 bits.
        guard montrose_inflateInit2(&stream, -15) == Z_OK else { return nil }
    }

    deinit { inflateEnd(&stream) }

    /// Inflates one message's payload. Throws `.messageTooBig` past `limit` bytes of output and
    /// `.invalidCompressedData` on a corrupt stream.
    public func inflate(_ compressed: [UInt8], limit: Int) throws(WebSocketError) -> [UInt8] {
        var output = [UInt8]()
        output.reserveCapacity(min(limit, max(compressed.count * 3, 256)))
        try run(compressed, limit: limit, output: &output)
        try run(Inflater.tail, limit: limit, output: &output)
        if resetAfterMessage { inflateReset(&stream) }
        return output
    }

    private func run(_ input: [UInt8], limit: Int, output: inout [UInt8]) throws(WebSocketError) {
        var failure: WebSocketError?
        input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Inflater.chunk) { scratch in
                while true {
                    stream.next_out = scratch.baseAddress
                    stream.avail_out = UInt32(Inflater.chunk)
                    let rc = CZlib.inflate(&stream, Z_SYNC_FLUSH)
                    let produced = Inflater.chunk - Int(stream.avail_out)
                    if produced > 0 {
                        if output.count + produced > limit {
                            failure = .messageTooBig(limit: limit)
                            return
                        }
                        output.append(contentsOf: UnsafeBufferPointer(start: scratch.baseAddress, count: produced))
                    }
                    switch rc {
                    case Z_OK:
                        if stream.avail_in == 0 && stream.avail_out != 0 { return }
                    case Z_STREAM_END:
                        // The peer ended the deflate stream (BFINAL): start a fresh one.
                        inflateReset(&stream)
                        if stream.avail_in == 0 { return }
                    case Z_BUF_ERROR:
                        return // no progress possible: input used up
                    default:
                        failure = .invalidCompressedData
                        return
                    }
                }
            }
        }
        stream.next_in = nil
        stream.avail_in = 0
        if let failure {
            // A half-inflated message leaves the stream in an unknown state: the connection
            // is closed by the caller, but reset anyway so the object stays consistent.
            inflateReset(&stream)
            throw failure
        }
    }
}
