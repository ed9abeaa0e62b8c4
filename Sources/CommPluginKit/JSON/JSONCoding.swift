/// The kit's one place for JSON: how values become message and state bytes
/// and back, and how coding errors read. The coder is the kit's own
/// (``JSONParser``, ``JSONValueDecoder``, ``JSONValueEncoder``,
/// ``JSONTextWriter``), so a plugin built with the kit loads no Foundation.
enum JSONCoding {
    /// Encodes `value` with sorted keys, so equal values give equal bytes.
    /// Throws ``PluginError`` (`invalidArgument`) naming `what` on failure.
    static func encode(_ value: some Encodable, what: String) throws -> [UInt8] {
        do {
            return try JSONTextWriter.write(JSONValueEncoder.encode(value))
        } catch {
            throw PluginError(.invalidArgument, "cannot encode \(what) as JSON: \(describe(error))")
        }
    }

    /// Decodes a `T` from JSON `bytes` (strict RFC 8259); when
    /// `emptyIsObject`, empty bytes read as `{}` (the ABI's meaning of an
    /// empty data slice). Throws ``PluginError`` with `status`, naming
    /// `what`, the type and the JSON path (or the byte offset of a syntax
    /// error) on failure.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String,
                                     status: PluginStatus, emptyIsObject: Bool = true) throws -> T {
        do {
            let value = bytes.isEmpty && emptyIsObject ? JSONValue.object(JSONObject()) : try JSONParser.parse(bytes)
            return try JSONValueDecoder.decode(T.self, from: value)
        } catch {
            throw PluginError(status, "cannot read \(what) as \(T.self): \(describe(error))")
        }
    }

    /// A one-line account of a coding error: where in the JSON and what was wrong.
    static func describe(_ error: any Error) -> String {
        func at(_ path: [any CodingKey]) -> String {
            guard !path.isEmpty else { return "at the top level" }
            let text = path.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined()
            return "at \(text.hasPrefix(".") ? String(text.dropFirst()) : text)"
        }
        switch error {
        case DecodingError.typeMismatch(_, let context),
             DecodingError.valueNotFound(_, let context),
             DecodingError.dataCorrupted(let context):
            return "\(at(context.codingPath)): \(context.debugDescription)"
        case DecodingError.keyNotFound(let key, let context):
            return "\(at(context.codingPath)): missing key \"\(key.stringValue)\""
        case EncodingError.invalidValue(_, let context):
            return "\(at(context.codingPath)): \(context.debugDescription)"
        default:
            return String(describing: error)
        }
    }
}
