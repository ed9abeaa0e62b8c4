/// Reads JSON text into a ``JSONValue``, strictly as RFC 8259 writes it:
/// one value with optional whitespace (space, tab, line feed, carriage
/// return) around it; no trailing commas, comments, single quotes, leading
/// zeros, `NaN` or bare words; strings of valid UTF-8 (no overlong forms,
/// no encoded surrogates), control characters escaped, `\u` surrogates in
/// pairs. Arrays and objects nest at most ``maxDepth`` deep.
///
/// Errors are `DecodingError.dataCorrupted` at the top level, saying at
/// which byte and what was expected there, in the words of the host's own
/// JSON scanner (`invalid JSON at byte 7: expected ...`).
struct JSONParser {
    /// The deepest nesting of arrays and objects read (Foundation's JSONDecoder's limit).
    static let maxDepth = 512

    private let base: UnsafeBufferPointer<UInt8>
    private var pos = 0
    private var depth = 0

    private init(_ base: UnsafeBufferPointer<UInt8>) {
        self.base = base
    }

    /// The value `bytes` hold. Throws `DecodingError.dataCorrupted` naming the
    /// byte offset and the reason when they are not exactly one JSON value.
    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(buffer)
            parser.skipWhitespace()
            let value = try parser.value()
            parser.skipWhitespace()
            guard parser.pos == buffer.count else {
                throw parser.syntaxError(expected: "the end of the input after the value")
            }
            return value
        }
    }

    // MARK: Values

    private mutating func value() throws -> JSONValue {
        guard pos < base.count else { throw syntaxError(expected: "a value") }
        switch base[pos] {
        case UInt8(ascii: "{"): return .object(try object())
        case UInt8(ascii: "["): return .array(try array())
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: throw syntaxError(expected: "a value")
        }
    }

    private mutating func object() throws -> JSONObject {
        try enter()
        var object = JSONObject()
        skipWhitespace()
        if peek(UInt8(ascii: "}")) {
            pos += 1
            depth -= 1
            return object
        }
        while true {
            guard peek(UInt8(ascii: "\"")) else { throw syntaxError(expected: "a string (a member name)") }
            let key = try string()
            skipWhitespace()
            guard peek(UInt8(ascii: ":")) else { throw syntaxError(expected: "':' after a member name") }
            pos += 1
            skipWhitespace()
            object.set(key, try value())
            skipWhitespace()
            if peek(UInt8(ascii: ",")) {
                pos += 1
                skipWhitespace()
                if peek(UInt8(ascii: "}")) { throw invalid(at: pos, "trailing comma before '}'") }
                continue
            }
            guard peek(UInt8(ascii: "}")) else { throw syntaxError(expected: "',' or '}' after a member") }
            pos += 1
            depth -= 1
            return object
        }
    }

    private mutating func array() throws -> [JSONValue] {
        try enter()
        var items: [JSONValue] = []
        skipWhitespace()
        if peek(UInt8(ascii: "]")) {
            pos += 1
            depth -= 1
            return items
        }
        while true {
            items.append(try value())
            skipWhitespace()
            if peek(UInt8(ascii: ",")) {
                pos += 1
                skipWhitespace()
                if peek(UInt8(ascii: "]")) { throw invalid(at: pos, "trailing comma before ']'") }
                continue
            }
            guard peek(UInt8(ascii: "]")) else { throw syntaxError(expected: "',' or ']' after an array item") }
            pos += 1
            depth -= 1
            return items
        }
    }

    /// At `{` or `[`: steps past it, one level deeper.
    private mutating func enter() throws {
        guard depth < Self.maxDepth else {
            throw invalid(at: pos, "arrays and objects nested more than \(Self.maxDepth) deep")
        }
        depth += 1
        pos += 1
    }

    private mutating func literal(_ word: StaticString) throws {
        let text = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for (offset, byte) in text.enumerated() where pos + offset >= base.count || base[pos + offset] != byte {
            throw syntaxErrorAt(pos + offset, expected: "'\(Character(Unicode.Scalar(byte)))' of \(word)")
        }
        pos += text.count
    }

    // MARK: Numbers

    /// At `-` or a digit: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, returned as text.
    private mutating func number() throws -> String {
        let start = pos
        if peek(UInt8(ascii: "-")) { pos += 1 }
        if peek(UInt8(ascii: "0")) {
            pos += 1
            if pos < base.count, isDigit(base[pos]) {
                throw invalid(at: pos - 1, "a number must not start with 0 followed by more digits")
            }
        } else {
            try digits(expected: "a digit")
        }
        if peek(UInt8(ascii: ".")) {
            pos += 1
            try digits(expected: "a digit after the decimal point")
        }
        if pos < base.count, base[pos] | 0x20 == UInt8(ascii: "e") {
            pos += 1
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { pos += 1 }
            try digits(expected: "a digit in the exponent")
        }
        return String(decoding: UnsafeBufferPointer(rebasing: base[start..<pos]), as: UTF8.self)
    }

    private mutating func digits(expected: String) throws {
        guard pos < base.count, isDigit(base[pos]) else { throw syntaxError(expected: expected) }
        repeat { pos += 1 } while pos < base.count && isDigit(base[pos])
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    // MARK: Strings

    /// At `"`: the string's text, escapes resolved; steps past the closing quote.
    private mutating func string() throws -> String {
        let start = pos
        pos += 1
        var run = pos
        var unescaped: [UInt8]? // only once an escape appears
        while true {
            guard pos < base.count else {
                throw syntaxError(expected: "'\"' to end the string that starts at byte \(start)")
            }
            let byte = base[pos]
            switch byte {
            case UInt8(ascii: "\""):
                let tail = UnsafeBufferPointer(rebasing: base[run..<pos])
                pos += 1
                guard var text = unescaped else { return String(decoding: tail, as: UTF8.self) }
                text.append(contentsOf: tail)
                return String(decoding: text, as: UTF8.self)
            case UInt8(ascii: "\\"):
                var text = unescaped ?? []
                text.append(contentsOf: UnsafeBufferPointer(rebasing: base[run..<pos]))
                try escape(into: &text)
                unescaped = text
                run = pos
            case 0..<0x20:
                throw invalid(at: pos, "control character \(Self.hexByte(byte)) must be escaped inside a string")
            case 0x80...:
                try utf8Sequence()
            default:
                pos += 1
            }
        }
    }

    /// At `\`: appends the escaped character's UTF-8 to `text` and steps past the escape.
    private mutating func escape(into text: inout [UInt8]) throws {
        guard pos + 1 < base.count else { throw syntaxErrorAt(pos + 1, expected: "an escape character after '\\'") }
        let letter = base[pos + 1]
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(letter)
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try hex4(at: pos + 2)
            var scalar = UInt32(unit)
            switch unit {
            case 0xD800...0xDBFF:
                guard pos + 7 < base.count, base[pos + 6] == UInt8(ascii: "\\"), base[pos + 7] == UInt8(ascii: "u") else {
                    throw invalid(at: pos, "high surrogate \\u\(Self.hex4String(unit)) is not followed by a low surrogate escape")
                }
                let low = try hex4(at: pos + 8)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw invalid(at: pos, "high surrogate \\u\(Self.hex4String(unit)) is followed by "
                        + "\\u\(Self.hex4String(low)), not a low surrogate")
                }
                scalar = 0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(low - 0xDC00)
                pos += 6
            case 0xDC00...0xDFFF:
                throw invalid(at: pos, "low surrogate \\u\(Self.hex4String(unit)) without a high surrogate before it")
            default:
                break
            }
            text.append(contentsOf: String(Unicode.Scalar(scalar)!).utf8)
            pos += 4
        default:
            throw syntaxErrorAt(pos + 1, expected: "one of \" \\ / b f n r t u after '\\'")
        }
        pos += 2
    }

    private func hex4(at p: Int) throws -> UInt16 {
        var value: UInt16 = 0
        for i in p..<p + 4 {
            guard i < base.count else { throw syntaxErrorAt(i, expected: "a hex digit in a \\u escape") }
            let byte = base[i]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw syntaxErrorAt(i, expected: "a hex digit in a \\u escape")
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    /// At a byte >= 0x80 inside a string: steps past one UTF-8 sequence,
    /// checked by the standard library's UTF-8 parser (Unicode's table 3-7:
    /// no overlong forms, no surrogates, nothing above U+10FFFF).
    private mutating func utf8Sequence() throws {
        var parser = Unicode.UTF8.ForwardParser()
        var bytes = base[pos...].makeIterator()
        guard case .valid(let sequence) = parser.parseScalar(from: &bytes) else {
            throw utf8Error("the sequence that starts with byte \(Self.hexByte(base[pos])) is not well-formed UTF-8")
        }
        pos += sequence.count
    }

    // MARK: Reading

    private func peek(_ byte: UInt8) -> Bool {
        pos < base.count && base[pos] == byte
    }

    private mutating func skipWhitespace() {
        while pos < base.count {
            switch base[pos] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): pos += 1
            default: return
            }
        }
    }

    // MARK: Errors

    private func syntaxError(expected: String) -> DecodingError {
        syntaxErrorAt(pos, expected: expected)
    }

    private func syntaxErrorAt(_ p: Int, expected: String) -> DecodingError {
        let found = p < base.count ? Self.describeByte(base[p]) : "the end of the input"
        return invalid(at: p, "expected \(expected), found \(found)")
    }

    private func utf8Error(_ what: String) -> DecodingError {
        Self.corrupted("invalid UTF-8 in a string at byte \(pos): \(what)")
    }

    private func invalid(at p: Int, _ reason: String) -> DecodingError {
        Self.corrupted("invalid JSON at byte \(p): \(reason)")
    }

    private static func corrupted(_ text: String) -> DecodingError {
        .dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: text))
    }

    private static func describeByte(_ byte: UInt8) -> String {
        byte >= 0x21 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte \(hexByte(byte))"
    }

    private static func hexByte(_ byte: UInt8) -> String {
        "0x" + hex(UInt16(byte), digits: 2)
    }

    private static func hex4String(_ unit: UInt16) -> String {
        hex(unit, digits: 4)
    }

    private static func hex(_ value: UInt16, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: digits - text.count) + text
    }
}
