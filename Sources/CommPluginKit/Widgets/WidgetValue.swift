/// A value in a widget model's state: JSON, plus binary leaves.
///
/// In the Jupyter widget message protocol a state is a JSON object whose
/// binary values (an `Image`'s `value`, a NumPy array) travel outside the
/// JSON, as the message's buffers, with `buffer_paths` saying where each one
/// belongs. ``WidgetState`` moves ``bytes(_:)`` leaves out into buffers and
/// back; everything else is plain JSON.
///
/// As `Codable`, a value is its JSON; a ``bytes(_:)`` leaf cannot be written
/// as plain JSON (encoding throws, naming where it was): send states through
/// ``WidgetState`` instead. Numbers read as ``int(_:)`` when they are integers
/// that fit an `Int`, else as ``double(_:)``.
public enum WidgetValue: Hashable, Sendable {
    /// JSON `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// An integer number.
    case int(Int)
    /// Any other number.
    case double(Double)
    /// A string.
    case string(String)
    /// Binary data: travels as a buffer, never inside the JSON.
    case bytes([UInt8])
    /// A JSON array.
    case array([WidgetValue])
    /// A JSON object.
    case object([String: WidgetValue])

    /// What kind of value this is, for error messages: "an integer", "a
    /// string", "binary data", ...
    public var kind: String {
        switch self {
        case .null: "null"
        case .bool: "true/false"
        case .int: "an integer"
        case .double: "a number"
        case .string: "a string"
        case .bytes: "binary data"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// The value described for an error message, e.g. `the number 42.5`,
    /// `the string "x"`.
    public var described: String {
        switch self {
        case .null: "null"
        case .bool(let flag): "\(flag)"
        case .int(let number): "the integer \(number)"
        case .double(let number): "the number \(number)"
        case .string(let text): "the string \"\(text.count > 40 ? String(text.prefix(40)) + "…" : text)\""
        case .bytes(let bytes): "\(bytes.count) bytes of binary data"
        case .array(let items): "an array of \(items.count)"
        case .object(let members): "an object with \(members.count) members"
        }
    }

    /// Whether this (current) value may be replaced by `new` in an update:
    /// the same kind, an integer where a number is, anything where null is.
    /// Null is accepted only where the value is null now.
    public func accepts(_ new: WidgetValue) -> Bool {
        switch (self, new) {
        case (.null, _): true
        case (.bool, .bool), (.int, .int), (.double, .double), (.double, .int), (.string, .string),
             (.bytes, .bytes), (.array, .array), (.object, .object): true
        default: false
        }
    }

    /// The integer, when this is ``int(_:)``.
    public var intValue: Int? {
        if case .int(let number) = self { return number }
        return nil
    }

    /// The string, when this is ``string(_:)``.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The bytes, when this is ``bytes(_:)``.
    public var bytesValue: [UInt8]? {
        if case .bytes(let bytes) = self { return bytes }
        return nil
    }

    /// The members, when this is ``object(_:)``.
    public var objectValue: [String: WidgetValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The items, when this is ``array(_:)``.
    public var arrayValue: [WidgetValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// The member `key` of an object (nil for a missing key or a non-object).
    public subscript(key: String) -> WidgetValue? {
        objectValue?[key]
    }
}

extension WidgetValue: Codable {
    /// Reads any JSON value.
    public init(from decoder: any Decoder) throws {
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let flag = try? single.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? single.decode(Int.self) {
            self = .int(number)
        } else if let number = try? single.decode(Double.self) {
            self = .double(number)
        } else if let text = try? single.decode(String.self) {
            self = .string(text)
        } else if let items = try? single.decode([WidgetValue].self) {
            self = .array(items)
        } else {
            self = .object(try single.decode([String: WidgetValue].self))
        }
    }

    /// Writes the JSON value; throws `EncodingError.invalidValue` for a
    /// ``bytes(_:)`` leaf (send it through ``WidgetState``, which moves it
    /// into a buffer).
    public func encode(to encoder: any Encoder) throws {
        var single = encoder.singleValueContainer()
        switch self {
        case .null: try single.encodeNil()
        case .bool(let flag): try single.encode(flag)
        case .int(let number): try single.encode(number)
        case .double(let number): try single.encode(number)
        case .string(let text): try single.encode(text)
        case .array(let items): try single.encode(items)
        case .object(let members): try single.encode(members)
        case .bytes:
            throw EncodingError.invalidValue(self, EncodingError.Context(
                codingPath: encoder.codingPath,
                debugDescription: "binary data cannot be written as plain JSON; send widget state through "
                    + "WidgetState, which moves it into a buffer"))
        }
    }
}

extension WidgetValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    /// `null`.
    public init(nilLiteral: ()) { self = .null }
    /// ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// ``int(_:)``.
    public init(integerLiteral value: Int) { self = .int(value) }
    /// ``double(_:)``.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// ``string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
    /// ``array(_:)``.
    public init(arrayLiteral elements: WidgetValue...) { self = .array(elements) }
    /// ``object(_:)``; a repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, WidgetValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
}
