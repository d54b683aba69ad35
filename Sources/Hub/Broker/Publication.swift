import Protocol

// What travels from "committed" to the sockets: one push for one channel. Its transportable
// part is (channel, seq, notificationID, payload): a broker between nodes sends those and the
// receiving node frames the payload once for all its subscribers.

/// One published push: the encoded frame, and the seq of the message it carries (for sequence
/// checks; a plain value, so delivering to a subscriber copies nothing but the reference).
final class Publication: Sendable {
    let channel: String
    /// Immutable bytes (see `Bytes`), which Swift cannot mark Sendable: they live in a
    /// ManagedBuffer's tail, and ManagedBuffer refuses the conformance.
    nonisolated(unsafe) let frame: Bytes
    let seq: Int64?
    /// A notification or broadcast push: recorded per user when written, for receipts.
    let notificationID: Int64?
    /// A `join` or `leave` push: the user it is about, who never receives it (on one node the
    /// push is published before the user's own subscription exists; across nodes the decision
    /// arrives after it).
    let member: String?
    /// Agents and admins only (an internal note): a client's subscription counts its seq as
    /// passed and writes nothing.
    let staffOnly: Bool
    init(channel: String, frame: Bytes, seq: Int64? = nil, notificationID: Int64? = nil, member: String? = nil, staffOnly: Bool = false) {
        self.channel = channel
        self.frame = frame
        self.seq = seq
        self.notificationID = notificationID
        self.member = member
        self.staffOnly = staffOnly
    }

    /// A push that arrived as its transportable parts (from another node): framed once here.
    convenience init(channel: String, payload: UnsafeRawBufferPointer, seq: Int64?, notificationID: Int64?, member: String? = nil,
                     staffOnly: Bool = false) {
        self.init(channel: channel, frame: Bytes.frame(.text, payload), seq: seq, notificationID: notificationID, member: member,
                  staffOnly: staffOnly)
    }

    /// The push's JSON: the frame without its header (the server's frames are unmasked, so the
    /// header is 2, 4 or 10 bytes by the payload's length).
    var payload: UnsafeRawBufferPointer {
        let frame = self.frame.buffer
        let header = switch frame[1] & 0x7F {
        case 126: 4
        case 127: 10
        default: 2
        }
        return UnsafeRawBufferPointer(rebasing: frame[header...])
    }

    /// `{"type": type, …fields}` as a text frame, encoded once for every subscriber.
    static func push(channel: String, seq: Int64? = nil, notificationID: Int64? = nil, member: String? = nil,
                     staffOnly: Bool = false, capacity: Int = 256, _ write: (inout JSONWriter) -> Void) -> Publication {
        var w = JSONWriter(capacity: capacity)
        w.beginObject()
        write(&w)
        w.endObject()
        return Publication(channel: channel, frame: Bytes.frame(.text, w.bytes), seq: seq, notificationID: notificationID,
                           member: member, staffOnly: staffOnly)
    }
}
