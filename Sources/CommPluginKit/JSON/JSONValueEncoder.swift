/// An `Encoder` that builds an ``EncodedJSON`` tree from an `Encodable`
/// value; ``JSONTextWriter`` writes the tree out.
///
/// The output is what Foundation's `JSONEncoder` writes with `.sortedKeys`
/// and `.withoutEscapingSlashes` (the kit's format before it had its own
/// coder, so saved state compares equal across that change): integers in
/// decimal; a `Double` or `Float` as its shortest round-trip text without a
/// trailing `.0` (`1`, `1.5`, `1e+20`, `1e-07`); NaN and infinities throw
/// `EncodingError.invalidValue`; a value that writes nothing is `{}`.
final class JSONValueEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// What has been written so far; nil until something is.
    fileprivate(set) var value: EncodedJSON?

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    /// The tree `value` encodes to, at `codingPath`.
    static func encode(_ value: some Encodable, codingPath: [any CodingKey] = []) throws -> EncodedJSON {
        let encoder = JSONValueEncoder(codingPath: codingPath)
        try value.encode(to: encoder)
        return encoder.result
    }

    /// What this encoder wrote: `{}` when nothing.
    var result: EncodedJSON {
        value ?? .object(EncodedObject())
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let object: EncodedObject
        if case .object(let existing)? = value {
            object = existing
        } else {
            object = EncodedObject()
            value = .object(object)
        }
        return KeyedEncodingContainer(KeyedWriter<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let array: EncodedArray
        if case .array(let existing)? = value {
            array = existing
        } else {
            array = EncodedArray()
            value = .array(array)
        }
        return UnkeyedWriter(array: array, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueWriter(encoder: self)
    }

    // MARK: Scalars

    static func number(_ value: some FixedWidthInteger) -> EncodedJSON {
        .literal(String(value))
    }

    /// The shortest text that reads back as `value`, without a trailing
    /// `.0`; throws for NaN and the infinities, which JSON cannot write.
    static func number<T: BinaryFloatingPoint & CustomStringConvertible>(_ value: T,
                                                                        at codingPath: [any CodingKey]) throws -> EncodedJSON {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, EncodingError.Context(
                codingPath: codingPath, debugDescription: "\(T.self) \(value) cannot be written as JSON, "
                    + "which has no NaN or infinity"))
        }
        var text = value.description
        if text.hasSuffix(".0") {
            text.removeLast(2)
        }
        return .literal(text)
    }
}

/// What a ``JSONValueEncoder`` builds: containers are objects shared with
/// the encoding containers that fill them, so nested containers can be
/// written after they are made.
enum EncodedJSON {
    /// A number, `true`, `false` or `null`, as written.
    case literal(String)
    /// A string, to be escaped.
    case string(String)
    /// An array.
    case array(EncodedArray)
    /// An object.
    case object(EncodedObject)
    /// What a super encoder writes (`{}` if nothing), known once the value is written out.
    case encoder(JSONValueEncoder)
}

/// The items of an array being encoded.
final class EncodedArray {
    var items: [EncodedJSON] = []
}

/// The members of an object being encoded; a key set twice keeps its last value.
final class EncodedObject {
    var members: [String: EncodedJSON] = [:]
}

/// Writes an object's members.
private struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let object: EncodedObject
    let codingPath: [any CodingKey]

    private func set(_ value: EncodedJSON, _ key: Key) {
        object.members[key.stringValue] = value
    }

    mutating func encodeNil(forKey key: Key) throws { set(.literal("null"), key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.literal(value ? "true" : "false"), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        set(try JSONValueEncoder.number(value, at: codingPath + [key]), key)
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        set(try JSONValueEncoder.number(value, at: codingPath + [key]), key)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(JSONValueEncoder.number(value), key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        set(try JSONValueEncoder.encode(value, codingPath: codingPath + [key]), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type,
                                                        forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = EncodedObject()
        set(.object(nested), key)
        return KeyedEncodingContainer(KeyedWriter<NestedKey>(object: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = EncodedArray()
        set(.array(nested), key)
        return UnkeyedWriter(array: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = JSONValueEncoder(codingPath: codingPath + [JSONCodingKey.superKey])
        object.members["super"] = .encoder(encoder)
        return encoder
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let encoder = JSONValueEncoder(codingPath: codingPath + [key])
        set(.encoder(encoder), key)
        return encoder
    }
}

/// Appends an array's items.
private struct UnkeyedWriter: UnkeyedEncodingContainer {
    let array: EncodedArray
    let codingPath: [any CodingKey]

    var count: Int { array.items.count }

    /// The coding path of the next item.
    private var nextPath: [any CodingKey] {
        codingPath + [JSONCodingKey(intValue: array.items.count)]
    }

    private func append(_ value: EncodedJSON) {
        array.items.append(value)
    }

    mutating func encodeNil() throws { append(.literal("null")) }
    mutating func encode(_ value: Bool) throws { append(.literal(value ? "true" : "false")) }
    mutating func encode(_ value: String) throws { append(.string(value)) }
    mutating func encode(_ value: Double) throws { append(try JSONValueEncoder.number(value, at: nextPath)) }
    mutating func encode(_ value: Float) throws { append(try JSONValueEncoder.number(value, at: nextPath)) }
    mutating func encode(_ value: Int) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: Int8) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: Int16) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: Int32) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: Int64) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt8) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt16) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt32) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt64) throws { append(JSONValueEncoder.number(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        append(try JSONValueEncoder.encode(value, codingPath: nextPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
        -> KeyedEncodingContainer<NestedKey> {
        let nested = EncodedObject()
        let path = nextPath
        append(.object(nested))
        return KeyedEncodingContainer(KeyedWriter<NestedKey>(object: nested, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = EncodedArray()
        let path = nextPath
        append(.array(nested))
        return UnkeyedWriter(array: nested, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = JSONValueEncoder(codingPath: nextPath)
        append(.encoder(encoder))
        return encoder
    }
}

/// Sets the encoder's one value.
private struct SingleValueWriter: SingleValueEncodingContainer {
    let encoder: JSONValueEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ value: EncodedJSON) {
        encoder.value = value
    }

    mutating func encodeNil() throws { set(.literal("null")) }
    mutating func encode(_ value: Bool) throws { set(.literal(value ? "true" : "false")) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(try JSONValueEncoder.number(value, at: codingPath)) }
    mutating func encode(_ value: Float) throws { set(try JSONValueEncoder.number(value, at: codingPath)) }
    mutating func encode(_ value: Int) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: Int8) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: Int16) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: Int32) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: Int64) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt8) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt16) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt32) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode(_ value: UInt64) throws { set(JSONValueEncoder.number(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        set(try JSONValueEncoder.encode(value, codingPath: codingPath))
    }
}
