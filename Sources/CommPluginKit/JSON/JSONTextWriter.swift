/// Writes an ``EncodedJSON`` tree as compact JSON text: object members
/// sorted by the UTF-8 bytes of their names (so equal values give equal
/// bytes), strings escaped as Foundation's `JSONEncoder` escapes them with
/// `.withoutEscapingSlashes` (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`,
/// other control characters as `\u00XX` with lowercase hex; everything
/// else, `/` and non-ASCII included, as its UTF-8).
struct JSONTextWriter {
    /// The deepest nesting of arrays and objects written (Foundation's JSONEncoder's limit).
    static let maxDepth = 512

    private(set) var bytes: [UInt8] = []

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The text of `value`. Throws `EncodingError.invalidValue` when arrays
    /// and objects nest deeper than ``maxDepth``.
    static func write(_ value: EncodedJSON) throws -> [UInt8] {
        var writer = JSONTextWriter()
        try writer.write(value, depth: 0)
        return writer.bytes
    }

    private mutating func write(_ value: EncodedJSON, depth: Int) throws {
        switch value {
        case .literal(let text):
            bytes.append(contentsOf: text.utf8)
        case .string(let text):
            write(string: text)
        case .array(let array):
            try check(depth, array)
            bytes.append(UInt8(ascii: "["))
            for (index, item) in array.items.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                try write(item, depth: depth + 1)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            try check(depth, object)
            bytes.append(UInt8(ascii: "{"))
            let members = object.members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (index, member) in members.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(string: member.key)
                bytes.append(UInt8(ascii: ":"))
                try write(member.value, depth: depth + 1)
            }
            bytes.append(UInt8(ascii: "}"))
        case .encoder(let encoder):
            try write(encoder.result, depth: depth)
        }
    }

    private func check(_ depth: Int, _ container: AnyObject) throws {
        guard depth < Self.maxDepth else {
            throw EncodingError.invalidValue(container, EncodingError.Context(
                codingPath: [], debugDescription: "arrays and objects nested more than \(Self.maxDepth) deep"))
        }
    }

    private mutating func write(string: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = string
        text.withUTF8 { utf8 in
            var run = 0
            for (index, byte) in utf8.enumerated() {
                let escape: StaticString
                switch byte {
                case UInt8(ascii: "\""): escape = "\\\""
                case UInt8(ascii: "\\"): escape = "\\\\"
                case 0x08: escape = "\\b"
                case 0x0C: escape = "\\f"
                case 0x0A: escape = "\\n"
                case 0x0D: escape = "\\r"
                case 0x09: escape = "\\t"
                case 0..<0x20: escape = "\\u00"
                default: continue
                }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run..<index]))
                bytes.append(contentsOf: UnsafeBufferPointer(start: escape.utf8Start, count: escape.utf8CodeUnitCount))
                if byte < 0x20 && escape.utf8CodeUnitCount > 2 { // \u00XX: the two hex digits
                    bytes.append(Self.hexDigits[Int(byte >> 4)])
                    bytes.append(Self.hexDigits[Int(byte & 15)])
                }
                run = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
