import Foundation

// Encodes the `send` ops of one sender:
//   {"id":<id>,"op":"send","channel":"<channel>","text":"lt <send time ns> <sender> <n> xxx…",
//    "client_msg_id":"<run>-<sender>-<n>"}
// The text starts with the send time on the generator's monotonic clock (read back from the
// push by MessageText.sentAt) and is padded with x to `textBytes`. The run id makes every
// client_msg_id unique across runs on the same data folder, so no send is ever a retry.
struct SendEncoder {
    /// `,"op":"send","channel":"<channel>","text":"lt `
    private let head: [UInt8]
    /// `","client_msg_id":"<run>-<sender>-`
    private let idHead: [UInt8]
    private let sender: Int64
    private let textBytes: Int

    init(channel: String, runID: String, sender: Int, textBytes: Int) {
        head = Array(#","op":"send","channel":"\#(channel)","text":"lt "#.utf8)
        idHead = Array(#"","client_msg_id":"\#(runID)-\#(sender)-"#.utf8)
        self.sender = Int64(sender)
        self.textBytes = textBytes
    }

    /// A run id: milliseconds since the epoch and a random salt, base 36.
    static func newRunID() -> String {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        return String(millis, radix: 36) + String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }

    /// Replaces the contents of `out` with send number `n` (request id `id`), sent at `t`.
    func encode(into out: inout [UInt8], id: Int64, n: Int64, at t: UInt64) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: #"{"id":"#.utf8)
        Digits.append(id, to: &out)
        out.append(contentsOf: head)
        let textStart = out.count - 3
        Digits.append(Int64(bitPattern: t), to: &out)
        out.append(UInt8(ascii: " "))
        Digits.append(sender, to: &out)
        out.append(UInt8(ascii: " "))
        Digits.append(n, to: &out)
        out.append(UInt8(ascii: " "))
        let pad = textBytes - (out.count - textStart)
        if pad > 0 { out.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: pad)) }
        out.append(contentsOf: idHead)
        Digits.append(n, to: &out)
        out.append(contentsOf: #""}"#.utf8)
    }
}
