// Shared by every fuzz target: compiled into each fuzzer binary next to the target file and
// the Protocol sources (scripts/fuzz.sh). Only real bugs may end a run: a broken invariant
// traps here, and libFuzzer saves the input that did it.

/// Ends the run with a message naming the broken invariant (libFuzzer reports a deadly signal
/// and writes the input to fuzz-artifacts/).
@inline(never)
func fuzzFail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("fuzz invariant broken: \(message)", file: file, line: line)
}

@inline(__always)
func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fuzzFail(message(), file: file, line: line) }
}

/// A cut position in 0...count chosen by `selector`, spread over the whole input (not only the
/// first 256 bytes).
func splitPoint(_ selector: UInt8, count: Int) -> Int {
    count == 0 ? 0 : Int(selector) * (count + 1) / 256
}

/// Ways the same stream is delivered to an incremental decoder: whole, cut once at `cut`,
/// and byte by byte. Each is a list of consecutive ranges covering 0..<count.
enum Feeding {
    static func whole(_ count: Int) -> [Range<Int>] { [0..<count] }

    static func split(_ count: Int, at cut: Int) -> [Range<Int>] {
        let c = min(max(cut, 0), count)
        return [0..<c, c..<count]
    }

    static func byteByByte(_ count: Int) -> [Range<Int>] {
        (0..<count).map { $0..<($0 + 1) }
    }

    /// Pieces of `piece` bytes (the last one shorter).
    static func pieces(_ count: Int, of piece: Int) -> [Range<Int>] {
        let step = max(1, piece)
        return stride(from: 0, to: count, by: step).map { $0..<min($0 + step, count) }
    }
}

// MARK: WebSocket streams (frames and frames_deflate)

/// What one feeding of a frame stream produced: the events, then the error that ended it.
struct ReaderOutcome: Equatable {
    var events: [WebSocketEvent] = []
    var error: WebSocketError?
    var isFinished = false
}

/// Feeds a copy of `input` (the reader unmasks in place) to `reader`, cut into `pieces`.
func feedReader(_ reader: inout WebSocketReader, _ input: UnsafeRawBufferPointer,
                _ pieces: [Range<Int>]) -> ReaderOutcome {
    var out = ReaderOutcome()
    var copy = Array(input)
    copy.withUnsafeMutableBytes { buf in
        for piece in pieces {
            let read = UnsafeMutableRawBufferPointer(rebasing: buf[piece])
            let before = out.events.count
            defer {
                // A message read in place is copied out before the next piece, as the
                // connection reads it before its buffer is filled again: every feeding then
                // compares as assembled messages.
                // (A range outside the read traps in the slice: libFuzzer keeps the input.)
                for i in before..<out.events.count { out.events[i] = out.events[i].copiedOut(of: UnsafeRawBufferPointer(read)) }
            }
            do throws(WebSocketError) {
                try reader.feed(read, into: &out.events)
            } catch {
                out.error = error
                fuzzCheck(reader.isFinished, "reader not finished after \(error)")
                return
            }
        }
    }
    out.isFinished = reader.isFinished
    return out
}

/// Feeds `input` to fresh readers from `make` three ways (whole, cut in two at a point from
/// `selector`, and byte by byte when at most `bytewiseLimit` long), checks that they agree and
/// that the events follow the rules; returns the whole feeding's outcome.
func feedThreeWays(_ input: UnsafeRawBufferPointer, selector: UInt8, maxMessageSize: Int, bytewiseLimit: Int,
                   make: () -> WebSocketReader) -> ReaderOutcome {
    let size = input.count
    var reader = make()
    let whole = feedReader(&reader, input, Feeding.whole(size))
    checkEvents(whole.events, maxMessageSize: maxMessageSize)

    let cut = splitPoint(selector, count: size)
    var splitReader = make()
    let split = feedReader(&splitReader, input, Feeding.split(size, at: cut))
    fuzzCheck(whole == split, "whole and split at \(cut) differ: \(whole) vs \(split)")

    if size <= bytewiseLimit {
        var byteReader = make()
        let bytewise = feedReader(&byteReader, input, Feeding.byteByByte(size))
        fuzzCheck(whole == bytewise, "whole and byte-by-byte differ: \(whole) vs \(bytewise)")
    }
    return whole
}

/// What every event a reader hands out must satisfy.
func checkEvents(_ events: [WebSocketEvent], maxMessageSize: Int) {
    for (i, event) in events.enumerated() {
        switch event {
        case .message(let opcode, let payload):
            fuzzCheck(opcode == .text || opcode == .binary, "message with opcode \(opcode)")
            fuzzCheck(payload.count <= maxMessageSize, "message of \(payload.count) over \(maxMessageSize)")
            if opcode == .text { fuzzCheck(UTF8Validator.isValid(payload), "text message is not UTF-8") }
        case .messageInInput:
            fuzzFail("a message read in place was not copied out")
        case .ping(let payload), .pong(let payload):
            fuzzCheck(payload.count <= 125, "control payload of \(payload.count)")
        case .close(let code, let reason):
            fuzzCheck(i == events.count - 1, "event after a close")
            if let code { fuzzCheck(code.isValidOnWire, "close code \(code) not valid on the wire") }
            else { fuzzCheck(reason.isEmpty, "reason without a close code") }
            fuzzCheck(reason.utf8.count <= 123, "close reason of \(reason.utf8.count) bytes")
        }
    }
}

/// The events written back as (unmasked, uncompressed) server frames with FrameEncoder, and
/// read again by a reader that does not require masking: the same events must come out.
func checkReencoding(_ events: [WebSocketEvent], maxMessageSize: Int) {
    guard !events.isEmpty else { return }
    var stream: [UInt8] = []
    for event in events {
        switch event {
        case .message(let opcode, let payload): stream += FrameEncoder.frame(opcode: opcode, payload: payload)
        case .messageInInput: fuzzFail("a message read in place was not copied out")
        case .ping(let payload): stream += FrameEncoder.frame(opcode: .ping, payload: payload)
        case .pong(let payload): stream += FrameEncoder.frame(opcode: .pong, payload: payload)
        case .close(let code, let reason): stream += FrameEncoder.closeFrame(code: code, reason: reason)
        }
    }
    var reader = WebSocketReader(maxMessageSize: maxMessageSize, requireMask: false)
    let again = stream.withUnsafeBytes { feedReader(&reader, $0, Feeding.whole($0.count)) }
    fuzzCheck(again.error == nil, "re-encoded events refused: \(again.error.map { "\($0)" } ?? "")")
    fuzzCheck(again.events == events, "re-encoded events read back differently")
}
