import Notifications
import Persistence
import Protocol

// A bridge request's JSON body: read with the contract's param rules (Protocol/Contract/Params).
// Malformed JSON is a 400; a body that is JSON but breaks a field's rule is a 422 whose message
// names the field and the rule.
public typealias RequestBody = Params<APIError>

extension APIError: ParamFailure {
    public static func malformed(_ message: String) -> APIError { APIError(.badRequest, message) }
}

extension Params where Failure == APIError {
    init(_ bytes: [UInt8]) throws(APIError) {
        guard !bytes.isEmpty else { throw APIError(.badRequest, "a JSON object body is required") }
        let parsed: JSON
        do {
            parsed = try JSONParser.parse(bytes, maxDepth: ContractLimits.maxJSONDepth)
        } catch {
            throw APIError(.badRequest, "invalid JSON: \(error.message)")
        }
        guard case .object(let o) = parsed else { throw APIError(.badRequest, "the body must be a JSON object") }
        self.init(object: o)
    }

    /// An email address we are willing to put in an SMTP envelope: what SMTP will take
    /// (MailComposer's rule), and a single address: one '@', no list.
    static func isEmail(_ s: String) -> Bool {
        MailComposer.validateAddress(s) == nil && !s.contains(",") && s.utf8.filter { $0 == UInt8(ascii: "@") }.count == 1
    }
}
