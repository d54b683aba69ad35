// Fuzz target: JSONParser, JSONWriter and the chat envelope read from a text frame, plus
// UTF8Validator (the parser's first gate).
//
// The input is a text frame's payload. It is parsed as the hub parses an envelope
// (maxDepth 16); a parsed value must survive serialize → parse unchanged, and serializing the
// reparsed value must give the same bytes. The depth limit must be exact: the value parses
// with maxDepth equal to its depth and fails with tooDeep one below. The String entry point
// must agree with the byte one, and UTF8Validator must agree with the standard library's
// UTF-8 validation, whole and fed in two pieces. JSONError is a valid outcome.

private let envelopeDepth = 16

/// Nesting depth as JSONParser counts it: a scalar is 0, `[]` is 1.
private func depth(of value: JSON) -> Int {
    switch value {
    case .array(let a): return 1 + (a.map(depth(of:)).max() ?? 0)
    case .object(let o): return 1 + (o.map { depth(of: $0.value) }.max() ?? 0)
    default: return 0
    }
}

/// What Session.didReceive reads from a request envelope.
private func readEnvelope(_ request: JSON) {
    guard case .object(let o) = request else { return }
    _ = o.keys
    if let id = request["id"], case .int = id { _ = id.intValue }
    _ = request["op"]?.stringValue
    _ = request["token"]?.stringValue
    _ = request["channel"]?.stringValue
    _ = request["body"]?.stringValue
    _ = request["limit"]?.intValue
    _ = request["before"]?.doubleValue
    _ = request["ids"]?.arrayValue?.compactMap(\.intValue)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)

    // UTF-8: the DFA against the standard library, whole and in two pieces.
    let stdlibValid = String(validating: input, as: UTF8.self) != nil
    fuzzCheck(UTF8Validator.isValid(input) == stdlibValid, "UTF8Validator disagrees with the standard library")
    let cut = splitPoint(size > 0 ? data[0] : 0, count: size)
    var v = UTF8Validator()
    let piecewise = v.feed(UnsafeRawBufferPointer(rebasing: input[..<cut]))
        && v.feed(UnsafeRawBufferPointer(rebasing: input[cut...])) && v.isComplete
    fuzzCheck(piecewise == stdlibValid, "UTF8Validator fed in two pieces (cut \(cut)) gives \(piecewise)")

    let parsed: JSON
    do {
        parsed = try JSONParser.parse(input, maxDepth: envelopeDepth)
    } catch {
        if error == .invalidUTF8 { fuzzCheck(!stdlibValid, "invalidUTF8 for valid UTF-8") }
        return 0
    }
    fuzzCheck(stdlibValid, "parsed input that is not UTF-8")
    readEnvelope(parsed)
    fuzzCheck(parsed == parsed, "a parsed value is not equal to itself")

    // Serialize, reparse: the same value; serialize again: the same bytes.
    let text = parsed.serialized()
    let reparsed: JSON
    do {
        reparsed = try JSONParser.parse(text, maxDepth: envelopeDepth)
    } catch {
        fuzzFail("serialized JSON does not parse (\(error)): \(String(decoding: text, as: UTF8.self))")
    }
    fuzzCheck(reparsed == parsed, "round trip changed the value: \(String(decoding: text, as: UTF8.self))")
    let again = reparsed.serialized()
    fuzzCheck(again == text, "serialization not stable: \(String(decoding: text, as: UTF8.self)) then \(String(decoding: again, as: UTF8.self))")

    // The depth limit is exact.
    let d = depth(of: parsed)
    fuzzCheck(d <= envelopeDepth, "depth \(d) over the limit \(envelopeDepth)")
    do {
        _ = try JSONParser.parse(input, maxDepth: d)
    } catch {
        fuzzFail("refused at maxDepth \(d), its own depth: \(error)")
    }
    if d > 0 {
        do {
            _ = try JSONParser.parse(input, maxDepth: d - 1)
            fuzzFail("parsed at maxDepth \(d - 1), below its depth \(d)")
        } catch {
            fuzzCheck(error == .tooDeep(limit: d - 1), "at maxDepth \(d - 1): \(error), not tooDeep")
        }
    }

    // The String entry point agrees with the byte one.
    let asString = String(decoding: input, as: UTF8.self)
    do {
        let fromString = try JSONParser.parse(asString, maxDepth: envelopeDepth)
        fuzzCheck(fromString == parsed, "String and bytes parse differently")
    } catch {
        fuzzFail("String entry point refused what the byte one parsed: \(error)")
    }
    return 0
}
