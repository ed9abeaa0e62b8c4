/// A parsed JSON document, as ``JSONParser`` reads it and
/// ``JSONValueDecoder`` hands it to `Decodable` types.
///
/// A number keeps its text, so that each type reads it exactly (an `Int64`
/// of 19 digits is not rounded through a `Double` on the way).
enum JSONValue {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, as its text (valid RFC 8259 number syntax).
    case number(String)
    /// A string, escapes resolved.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object(JSONObject)

    /// The value described for an error message: `null`, `true`, `the
    /// number 1.5`, `the string "two"`, `an array`, `an object`.
    var described: String {
        switch self {
        case .null: "null"
        case .bool(let flag): "\(flag)"
        case .number(let text): "the number \(text)"
        case .string(let text): "the string \"\(text.count > 40 ? String(text.prefix(40)) + "…" : text)\""
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// The members of a JSON object, in the order they first appear. A name
/// that appears twice keeps its last value (as JavaScript's `JSON.parse`
/// and Python's `json` do).
struct JSONObject {
    /// The member names, each once, in document order.
    private(set) var keys: [String] = []
    /// The members by name.
    private(set) var members: [String: JSONValue] = [:]

    /// The member `key`, or nil.
    subscript(key: String) -> JSONValue? {
        members[key]
    }

    /// Sets member `key` to `value`; a name already present keeps its place and takes the new value.
    mutating func set(_ key: String, _ value: JSONValue) {
        if members.updateValue(value, forKey: key) == nil {
            keys.append(key)
        }
    }
}
