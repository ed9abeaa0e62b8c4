/// The JSON type of a value, told by its first byte; used to name what was found where
/// something else was expected.
enum JSONKind: Sendable {
    case object, array, string, number, boolean, null

    /// The kind of the value starting with `byte`, or nil if no value starts with it.
    @inline(__always)
    init?(firstByte byte: UInt8) {
        switch byte {
        case UInt8(ascii: "{"): self = .object
        case UInt8(ascii: "["): self = .array
        case UInt8(ascii: "\""): self = .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): self = .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): self = .boolean
        case UInt8(ascii: "n"): self = .null
        default: return nil
        }
    }

    /// The name used in error messages: "object", "array", "string", "number", "boolean", "null".
    var name: String {
        switch self {
        case .object: "object"
        case .array: "array"
        case .string: "string"
        case .number: "number"
        case .boolean: "boolean"
        case .null: "null"
        }
    }
}
