// The WebSocket request envelope (docs/protocol.md "Requests"): one text frame holding
// `{"id": <integer>, "op": <string>, ...params}`. Pure: no socket, no clock, no session; the
// caller says how large a request may be and whether the connection has authenticated.
//
// The refusals come in a fixed order, and a client can see which one won, so the order is
// part of the contract: not a text frame; over the size; not JSON; not an object; a bad id;
// an op that is not a string; then, unless the op is `auth` or `ping`, "authenticate first";
// only then an unknown op. The params are checked by each op's handler, after authorization.

/// A request that passed the envelope checks.
public struct OpRequest: Sendable {
    public let id: Int64
    public let op: Op
    /// The whole request object (`id` and `op` included); each handler reads its own fields.
    public let params: JSON
}

/// A request refused before any handler saw it, answered as `{"id", "ok": false, "error"}`.
public struct OpRefusal: Error, Equatable, Sendable {
    /// The request's id when it is known: read from the parsed object, or for a frame that is
    /// not parsed (binary, too large, not JSON) found by a scan of its first bytes.
    public let id: Int64?
    public let code: ErrorCode
    public let message: String
    /// The op the request named, when it is known at the point of refusal (it is timed as
    /// that op).
    public let op: Op?

    public init(id: Int64?, code: ErrorCode, message: String, op: Op? = nil) {
        self.id = id
        self.code = code
        self.message = message
        self.op = op
    }
}

public enum OpDecoder {
    /// Characters of an unknown op name quoted back in the refusal.
    public static let quotedOpCharacters = 40

    public static func decode(opcode: Opcode, payload: [UInt8], maxEnvelopeBytes: Int,
                              authenticated: Bool) -> Result<OpRequest, OpRefusal> {
        payload.withUnsafeBytes { decode(opcode: opcode, payload: $0, maxEnvelopeBytes: maxEnvelopeBytes, authenticated: authenticated) }
    }

    /// `payload` is read during the call only (the hub hands over its read buffer).
    public static func decode(opcode: Opcode, payload: UnsafeRawBufferPointer, maxEnvelopeBytes: Int,
                              authenticated: Bool) -> Result<OpRequest, OpRefusal> {
        guard opcode == .text else {
            return .failure(OpRefusal(id: JSONIDScan.topLevelID(payload, limit: maxEnvelopeBytes), code: .badRequest,
                                      message: "ops are JSON text frames"))
        }
        guard payload.count <= maxEnvelopeBytes else {
            return .failure(OpRefusal(id: JSONIDScan.topLevelID(payload, limit: maxEnvelopeBytes), code: .tooLarge,
                                      message: "request over \(maxEnvelopeBytes) bytes"))
        }
        let request: JSON
        do {
            request = try JSONParser.parse(payload, maxDepth: ContractLimits.maxJSONDepth)
        } catch {
            return .failure(OpRefusal(id: JSONIDScan.topLevelID(payload, limit: maxEnvelopeBytes), code: .badRequest,
                                      message: "invalid JSON: \(error.message)"))
        }
        guard case .object = request else {
            return .failure(OpRefusal(id: nil, code: .badRequest, message: "a request is a JSON object"))
        }
        guard let idValue = request["id"], case .int(let id) = idValue else {
            return .failure(OpRefusal(id: nil, code: .badRequest, message: "id must be an integer"))
        }
        guard let name = request["op"]?.stringValue else {
            return .failure(OpRefusal(id: id, code: .badRequest, message: "op must be a string"))
        }
        let op = Op(rawValue: name)
        if op != .auth && op != .ping && !authenticated {
            return .failure(OpRefusal(id: id, code: .unauthorized, message: "authenticate first with the auth op", op: op))
        }
        guard let op else {
            return .failure(OpRefusal(id: id, code: .badRequest,
                                      message: "unknown op \(JSONText.quote(String(name.prefix(quotedOpCharacters))))"))
        }
        return .success(OpRequest(id: id, op: op, params: request))
    }
}
