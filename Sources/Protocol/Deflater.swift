import CZlib

// The permessage-deflate compressor for one connection (RFC 7692 §7.2.1): each message is
// deflated with a sync flush and the trailing 00 00 FF FF removed. A final class because it
// owns a zlib stream.
public final class Deflater {
    private var stream = z_stream()
    private let resetAfterMessage: Bool
    private static let chunk = 16 * 1024

    public init?(parameters p: DeflateParameters, level: Int32 = 1) {
        resetAfterMessage = p.serverNoContextTakeover
        var bits = Int32(p.serverMaxWindowBits)
        var strategy = Z_DEFAULT_STRATEGY
        if bits < 9 {
            // zlib cannot produce a raw stream with a 256-byte window. Huffman-only coding
            // emits no back-references at all, so its output is valid for any window size.
            bits = 9
            strategy = Z_HUFFMAN_ONLY
        }
        // memLevel 8 is zlib's default; the window and hash sizes dominate the footprint.
        guard montrose_deflateInit2(&stream, level, -bits, 8, strategy) == Z_OK else { return nil }
    }

    deinit { deflateEnd(&stream) }

    public func deflate(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        var output = [UInt8]()
        output.reserveCapacity(input.count / 2 + 64)
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        stream.avail_in = UInt32(input.count)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Deflater.chunk) { scratch in
            repeat {
                stream.next_out = scratch.baseAddress
                stream.avail_out = UInt32(Deflater.chunk)
                _ = CZlib.deflate(&stream, Z_SYNC_FLUSH)
                let produced = Deflater.chunk - Int(stream.avail_out)
                output.append(contentsOf: UnsafeBufferPointer(start: scratch.baseAddress, count: produced))
            } while stream.avail_out == 0
        }
        stream.next_in = nil
        if output.count >= 4 && output[output.count - 4] == 0 && output[output.count - 3] == 0
            && output[output.count - 2] == 0xFF && output[output.count - 1] == 0xFF {
            output.removeLast(4)
        }
        if output.isEmpty { output = [0x00] } // an empty stored block: inflates to nothing
        if resetAfterMessage { deflateReset(&stream) }
        return output
    }

    public func deflate(_ input: [UInt8]) -> [UInt8] {
        input.withUnsafeBytes { deflate($0) }
    }
}
