/// A JSON text parsed strictly by RFC 8259 into a tree that remembers, for
/// every value, where it was in the source: its byte range and 1-based line.
/// Used where a person wrote the JSON (the manifest, plugin configs) and a
/// message must point at the line to fix. Not for the wire's hot path.
///
/// Accepted exactly: one JSON value (any kind) with optional whitespace
/// (space, tab, LF, CR) around it. Refused: an empty text, a byte order mark,
/// comments, trailing commas, single quotes, unquoted keys, control
/// characters (U+0000-U+001F) inside strings, invalid UTF-8 (overlong forms,
/// encoded surrogates, code points above U+10FFFF, truncated sequences),
/// unknown escapes, `\u` escapes that leave a surrogate unpaired, numbers
/// outside the RFC grammar (leading zeros, `+1`, `.5`, `1.`, `1e`, `NaN`),
/// nesting deeper than `Options.maxDepth`, and (unless allowed) an object
/// with two members of the same name.
public struct JSONDocument: Sendable {
    /// The source text, exactly as given.
    public let source: [UInt8]
    /// The top-level value.
    public let root: Node

    /// Parses `source`. Throws the first syntax error found, with its line,
    /// column and the JSON path of the value being read.
    public init(parsing source: [UInt8], options: Options = Options()) throws(SyntaxError) {
        self.source = source
        let result: Result<Node, SyntaxError> = source.withUnsafeBufferPointer { buffer in
            var parser = Parser(bytes: buffer, options: options)
            do throws(SyntaxError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        root = try result.get()
    }

    /// Parses the UTF-8 encoding of `text`.
    public init(parsing text: String, options: Options = Options()) throws(SyntaxError) {
        try self.init(parsing: Array(text.utf8), options: options)
    }

    /// The exact source bytes of `node` (for handing a value on without
    /// re-encoding it).
    public func sourceBytes(of node: Node) -> [UInt8] {
        Array(source[node.range])
    }

    /// What the parser accepts beyond the fixed grammar.
    public struct Options: Sendable, Equatable {
        /// Deepest nesting of arrays and objects accepted: with the default
        /// 256, 256 nested `[` are accepted and 257 refused. A scalar at top
        /// level has depth 0.
        public var maxDepth: Int
        /// When false (the default) an object with two members of the same
        /// name (compared by code points, after unescaping) is a syntax
        /// error. When true they are kept, in order, for the caller to report.
        public var allowDuplicateKeys: Bool

        /// Options with the given limits.
        public init(maxDepth: Int = 256, allowDuplicateKeys: Bool = false) {
            self.maxDepth = maxDepth
            self.allowDuplicateKeys = allowDuplicateKeys
        }
    }

    /// One value in the tree and where it was written.
    public struct Node: Sendable, Equatable {
        /// The value.
        public var value: Value
        /// Byte offsets of the value's text in the source (for strings,
        /// including the quotes).
        public var range: Range<Int>
        /// 1-based line of the value's first byte.
        public var line: Int

        /// Creates a node.
        public init(value: Value, range: Range<Int>, line: Int) {
            self.value = value
            self.range = range
            self.line = line
        }

        /// The first member named `key` when this is an object, else nil.
        public subscript(key: String) -> Node? {
            guard case .object(let members) = value else { return nil }
            return members.first { $0.key.utf8.elementsEqual(key.utf8) }?.value
        }

        /// The value as an `Int` when it is a number written as an integer
        /// (no fraction, no exponent) that fits; otherwise nil.
        public var intValue: Int? {
            guard case .number(let text) = value,
                  !text.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") })
            else { return nil }
            return Int(text)
        }

        /// The text of a string value; nil for any other kind.
        public var stringValue: String? {
            guard case .string(let text) = value else { return nil }
            return text
        }

        /// A short name for the kind of value ("object", "string", ...), for messages.
        public var kindName: String { value.kindName }

        /// Whether `self` and `other` are the same JSON value, ignoring how
        /// they were written: object member order and whitespace do not
        /// matter, strings compare by code points after unescaping, and
        /// numbers compare by exact decimal value (`1`, `1.0` and `10e-1` are
        /// equal; `-0` equals `0`).
        public func isSameValue(as other: Node) -> Bool {
            switch (value, other.value) {
            case (.null, .null): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.number(let a), .number(let b)):
                if let x = DecimalValue(a), let y = DecimalValue(b) { return x == y }
                return a == b
            case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
            case (.array(let a), .array(let b)):
                return a.count == b.count && zip(a, b).allSatisfy { $0.isSameValue(as: $1) }
            case (.object(let a), .object(let b)):
                guard a.count == b.count else { return false }
                var byKey: [[UInt8]: Node] = [:]
                for member in b { byKey[Array(member.key.utf8)] = member.value }
                guard byKey.count == b.count else { return false }
                return a.allSatisfy { member in
                    byKey[Array(member.key.utf8)].map { member.value.isSameValue(as: $0) } ?? false
                }
            default: return false
            }
        }
    }

    /// A JSON value. Numbers keep their source text (the grammar is checked;
    /// no precision is lost).
    public enum Value: Sendable, Equatable {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([Node])
        /// Members in source order.
        case object([Member])

        /// A short name for the kind of value ("object", "string", ...), for messages.
        public var kindName: String {
            switch self {
            case .null: "null"
            case .bool: "boolean"
            case .number: "number"
            case .string: "string"
            case .array: "array"
            case .object: "object"
            }
        }
    }

    /// One member of an object.
    public struct Member: Sendable, Equatable {
        /// The name, unescaped.
        public var key: String
        /// 1-based line of the name.
        public var keyLine: Int
        /// The value.
        public var value: Node

        /// Creates a member.
        public init(key: String, keyLine: Int, value: Node) {
            self.key = key
            self.keyLine = keyLine
            self.value = value
        }
    }

    /// Where a value sits in a document, written like `targets[2].library`.
    /// Member names that are not plain identifiers are written as
    /// `["a key"]`; the root is the empty path.
    public struct Path: Sendable, Hashable, CustomStringConvertible {
        /// One step from a container to a value inside it.
        public enum Component: Sendable, Hashable {
            case key(String)
            case index(Int)
        }

        /// The steps from the root.
        public var components: [Component]

        /// The root path.
        public init(_ components: [Component] = []) {
            self.components = components
        }

        /// This path extended by member `key`.
        public func appending(_ key: String) -> Path {
            Path(components + [.key(key)])
        }

        /// This path extended by array element `index`.
        public func appending(_ index: Int) -> Path {
            Path(components + [.index(index)])
        }

        public var description: String {
            var out = ""
            for component in components {
                switch component {
                case .index(let i): out += "[\(i)]"
                case .key(let key) where Path.isIdentifier(key): out += out.isEmpty ? key : "." + key
                case .key(let key): out += "[" + JSONText.string(key) + "]"
                }
            }
            return out
        }

        private static func isIdentifier(_ key: String) -> Bool {
            guard let first = key.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
            return key.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
            }
        }
    }

    /// Why a text is not JSON, and where.
    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        /// What is wrong, e.g. "trailing comma before ']'".
        public var message: String
        /// Byte offset of the offending byte (the source length at end of input).
        public var offset: Int
        /// 1-based line.
        public var line: Int
        /// 1-based column, counted in Unicode scalars from the start of the line.
        public var column: Int
        /// The value being read when the error was found (the duplicate
        /// member itself for a duplicate key).
        public var path: Path

        /// Creates an error.
        public init(message: String, offset: Int, line: Int, column: Int, path: Path) {
            self.message = message
            self.offset = offset
            self.line = line
            self.column = column
            self.path = path
        }

        /// "line L, column C: message" (with " (at PATH)" when not at the root).
        public var description: String {
            let at = path.components.isEmpty ? "" : " (at \(path))"
            return "line \(line), column \(column): \(message)\(at)"
        }
    }
}

// MARK: - Parser

extension JSONDocument {
    /// Recursive descent over the bytes; recursion depth is bounded by
    /// `Options.maxDepth`.
    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let options: Options
        var offset = 0
        var line = 1
        var lineStart = 0
        var path: [Path.Component] = []

        init(bytes: UnsafeBufferPointer<UInt8>, options: Options) {
            self.bytes = bytes
            self.options = options
        }

        mutating func parseDocument() throws(SyntaxError) -> Node {
            if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
                throw error("byte order mark (U+FEFF) before the JSON text; save the file as UTF-8 without BOM")
            }
            skipWhitespace()
            let root = try parseValue(depth: 0)
            skipWhitespace()
            if offset < bytes.count {
                throw error("unexpected \(describe(bytes[offset])) after the JSON value")
            }
            return root
        }

        // MARK: values

        mutating func parseValue(depth: Int) throws(SyntaxError) -> Node {
            guard offset < bytes.count else { throw error("unexpected end of input, expected a value") }
            let start = offset
            let startLine = line
            let value: Value
            switch bytes[offset] {
            case UInt8(ascii: "{"): value = try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): value = try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): value = .string(try parseString())
            case UInt8(ascii: "t"): try parseLiteral("true"); value = .bool(true)
            case UInt8(ascii: "f"): try parseLiteral("false"); value = .bool(false)
            case UInt8(ascii: "n"): try parseLiteral("null"); value = .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): value = .number(try parseNumber())
            case UInt8(ascii: "]"), UInt8(ascii: "}"): throw error("unexpected \(describe(bytes[offset])), expected a value")
            case UInt8(ascii: "'"): throw error("strings must use double quotes")
            case UInt8(ascii: "/"): throw error("comments are not allowed in JSON")
            default: throw error("unexpected \(describe(bytes[offset])), expected a value")
            }
            return Node(value: value, range: start..<offset, line: startLine)
        }

        mutating func parseObject(depth: Int) throws(SyntaxError) -> Value {
            if depth > options.maxDepth { throw error("nesting deeper than \(options.maxDepth) levels") }
            offset += 1
            var members: [Member] = []
            var seen: [[UInt8]: Int] = [:]
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                offset += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard let byte = peek() else { throw error("unexpected end of input, expected a member name") }
                guard byte == UInt8(ascii: "\"") else {
                    if byte == UInt8(ascii: "}") { throw error("trailing comma before '}'") }
                    throw error("expected a member name in double quotes, found \(describe(byte))")
                }
                let keyOffset = offset, keyLine = line, keyColumnStart = lineStart
                let key = try parseString()
                if !options.allowDuplicateKeys {
                    let keyBytes = Array(key.utf8)
                    if seen[keyBytes] != nil {
                        path.append(.key(key))
                        throw SyntaxError(
                            message: "duplicate member name \(JSONText.string(key)) (first at line \(seen[keyBytes]!))",
                            offset: keyOffset, line: keyLine, column: column(of: keyOffset, lineStart: keyColumnStart),
                            path: Path(path))
                    }
                    seen[keyBytes] = keyLine
                }
                skipWhitespace()
                guard let colon = peek() else { throw error("unexpected end of input, expected ':'") }
                guard colon == UInt8(ascii: ":") else { throw error("expected ':' after the member name, found \(describe(colon))") }
                offset += 1
                skipWhitespace()
                path.append(.key(key))
                let value = try parseValue(depth: depth)
                path.removeLast()
                members.append(Member(key: key, keyLine: keyLine, value: value))
                skipWhitespace()
                guard let next = peek() else { throw error("unexpected end of input, expected ',' or '}'") }
                offset += 1
                if next == UInt8(ascii: "}") { return .object(members) }
                guard next == UInt8(ascii: ",") else {
                    offset -= 1
                    throw error("expected ',' or '}' after a member, found \(describe(next))")
                }
            }
        }

        mutating func parseArray(depth: Int) throws(SyntaxError) -> Value {
            if depth > options.maxDepth { throw error("nesting deeper than \(options.maxDepth) levels") }
            offset += 1
            var elements: [Node] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                offset += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                if peek() == UInt8(ascii: "]") { throw error("trailing comma before ']'") }
                path.append(.index(elements.count))
                elements.append(try parseValue(depth: depth))
                path.removeLast()
                skipWhitespace()
                guard let next = peek() else { throw error("unexpected end of input, expected ',' or ']'") }
                offset += 1
                if next == UInt8(ascii: "]") { return .array(elements) }
                guard next == UInt8(ascii: ",") else {
                    offset -= 1
                    throw error("expected ',' or ']' after an element, found \(describe(next))")
                }
            }
        }

        mutating func parseLiteral(_ word: StaticString) throws(SyntaxError) {
            let count = word.utf8CodeUnitCount
            let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
            for i in 0..<count {
                guard offset + i < bytes.count, bytes[offset + i] == expected[i] else {
                    offset += i
                    throw error(offset < bytes.count
                        ? "unexpected \(describe(bytes[offset])), expected \(word)"
                        : "unexpected end of input, expected \(word)")
                }
            }
            offset += count
        }

        /// RFC 8259 section 6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func parseNumber() throws(SyntaxError) -> String {
            let start = offset
            if peek() == UInt8(ascii: "-") { offset += 1 }
            guard let first = peek(), isDigit(first) else {
                throw error(peek().map { "expected a digit after '-', found \(describe($0))" } ?? "unexpected end of input in a number")
            }
            offset += 1
            if first == UInt8(ascii: "0"), let next = peek(), isDigit(next) {
                throw error("numbers must not have leading zeros")
            }
            if first != UInt8(ascii: "0") { skipDigits() }
            if peek() == UInt8(ascii: ".") {
                offset += 1
                guard let digit = peek(), isDigit(digit) else { throw error("expected a digit after the decimal point") }
                skipDigits()
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                offset += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { offset += 1 }
                guard let digit = peek(), isDigit(digit) else { throw error("expected a digit in the exponent") }
                skipDigits()
            }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
        }

        mutating func skipDigits() {
            while let byte = peek(), isDigit(byte) { offset += 1 }
        }

        /// Reads a string starting at its opening quote; returns it unescaped.
        mutating func parseString() throws(SyntaxError) -> String {
            offset += 1
            var out: [UInt8] = []
            while true {
                guard offset < bytes.count else { throw error("unexpected end of input inside a string") }
                let byte = bytes[offset]
                switch byte {
                case UInt8(ascii: "\""):
                    offset += 1
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    try parseEscape(into: &out)
                case 0x00..<0x20:
                    throw error("control character \(describe(byte)) inside a string; write it as an escape (\(escapeHint(byte)))")
                case 0x00..<0x80:
                    out.append(byte)
                    offset += 1
                default:
                    let length = try validUTF8SequenceLength()
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[offset..<offset + length]))
                    offset += length
                }
            }
        }

        mutating func parseEscape(into out: inout [UInt8]) throws(SyntaxError) {
            offset += 1
            guard let byte = peek() else { throw error("unexpected end of input in an escape") }
            let simple: UInt8?
            switch byte {
            case UInt8(ascii: "\""): simple = 0x22
            case UInt8(ascii: "\\"): simple = 0x5C
            case UInt8(ascii: "/"): simple = 0x2F
            case UInt8(ascii: "b"): simple = 0x08
            case UInt8(ascii: "f"): simple = 0x0C
            case UInt8(ascii: "n"): simple = 0x0A
            case UInt8(ascii: "r"): simple = 0x0D
            case UInt8(ascii: "t"): simple = 0x09
            case UInt8(ascii: "u"): simple = nil
            default:
                offset -= 1
                throw error("invalid escape '\\\(describeRaw(byte))'; valid are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
            }
            if let simple {
                out.append(simple)
                offset += 1
                return
            }
            let escapeStart = offset - 1
            offset += 1
            var scalar = try hex4()
            if (0xDC00...0xDFFF).contains(scalar) {
                offset = escapeStart
                throw error("\\u escape of a low surrogate without a high surrogate before it")
            }
            if (0xD800...0xDBFF).contains(scalar) {
                guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                    offset = escapeStart
                    throw error("\\u escape of a high surrogate not followed by a low surrogate escape")
                }
                offset += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    offset = escapeStart
                    throw error("\\u escape of a high surrogate not followed by a low surrogate escape")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            appendUTF8(scalar, to: &out)
        }

        mutating func hex4() throws(SyntaxError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = peek() else { throw error("unexpected end of input in a \\u escape") }
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw error("\\u must be followed by four hex digits, found \(describe(byte))")
                }
                value = value << 4 | UInt32(digit)
                offset += 1
            }
            return value
        }

        /// Length of the well-formed UTF-8 sequence at `offset` (Unicode
        /// table 3-7), or a syntax error.
        func validUTF8SequenceLength() throws(SyntaxError) -> Int {
            let lead = bytes[offset]
            let length: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondRange = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondRange = 0x80...0x9F
            case 0xF0: length = 4; secondRange = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondRange = 0x80...0x8F
            default: throw error("invalid UTF-8 byte \(describe(lead)) inside a string")
            }
            for i in 1..<length {
                guard offset + i < bytes.count else { throw error("truncated UTF-8 sequence inside a string") }
                let byte = bytes[offset + i]
                guard (i == 1 ? secondRange : 0x80...0xBF).contains(byte) else {
                    throw error("invalid UTF-8 sequence inside a string (byte \(describe(byte)) after \(describe(lead)))")
                }
            }
            return length
        }

        // MARK: helpers

        func peek() -> UInt8? {
            offset < bytes.count ? bytes[offset] : nil
        }

        mutating func skipWhitespace() {
            while offset < bytes.count {
                switch bytes[offset] {
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                    offset += 1
                case UInt8(ascii: "\n"):
                    offset += 1
                    line += 1
                    lineStart = offset
                default:
                    return
                }
            }
        }

        func column(of position: Int, lineStart: Int) -> Int {
            var column = 1
            var i = lineStart
            while i < position && i < bytes.count {
                if bytes[i] & 0xC0 != 0x80 { column += 1 }
                i += 1
            }
            return column
        }

        func error(_ message: String) -> SyntaxError {
            let position = min(offset, bytes.count)
            return SyntaxError(message: message, offset: position, line: line,
                               column: column(of: position, lineStart: lineStart), path: Path(path))
        }

        func isDigit(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }

        func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "'\(describeRaw(byte))'" : "byte 0x" + SHA256.hex([byte]).uppercased()
        }

        func describeRaw(_ byte: UInt8) -> String {
            String(UnicodeScalar(byte))
        }

        func escapeHint(_ byte: UInt8) -> String {
            switch byte {
            case 0x0A: "\\n"
            case 0x0D: "\\r"
            case 0x09: "\\t"
            default: "\\u00" + SHA256.hex([byte])
            }
        }

        func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
            switch scalar {
            case 0..<0x80:
                out.append(UInt8(scalar))
            case 0x80..<0x800:
                out.append(UInt8(0xC0 | (scalar >> 6)))
                out.append(UInt8(0x80 | (scalar & 0x3F)))
            case 0x800..<0x10000:
                out.append(UInt8(0xE0 | (scalar >> 12)))
                out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
                out.append(UInt8(0x80 | (scalar & 0x3F)))
            default:
                out.append(UInt8(0xF0 | (scalar >> 18)))
                out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
                out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
                out.append(UInt8(0x80 | (scalar & 0x3F)))
            }
        }
    }
}

// MARK: - Number equality

/// A JSON number's exact value as sign, significant digits and a power of
/// ten, so `1`, `1.0` and `10e-1` compare equal. Nil when the exponent does
/// not fit in an `Int` (then numbers compare by their text).
private struct DecimalValue: Equatable {
    var negative: Bool
    var digits: [UInt8]
    var exponent: Int

    init?(_ text: String) {
        let bytes = Array(text.utf8)
        var i = 0
        negative = bytes.first == UInt8(ascii: "-")
        if negative { i += 1 }
        var digits: [UInt8] = []
        var fractionCount = 0
        var inFraction = false
        while i < bytes.count, bytes[i] != UInt8(ascii: "e"), bytes[i] != UInt8(ascii: "E") {
            if bytes[i] == UInt8(ascii: ".") {
                inFraction = true
            } else {
                digits.append(bytes[i])
                if inFraction { fractionCount += 1 }
            }
            i += 1
        }
        var exponent = 0
        if i < bytes.count {
            guard let parsed = Int(String(decoding: bytes[(i + 1)...], as: UTF8.self)) else { return nil }
            exponent = parsed
        }
        let (adjusted, overflow) = exponent.subtractingReportingOverflow(fractionCount)
        guard !overflow else { return nil }
        exponent = adjusted
        while digits.first == UInt8(ascii: "0") { digits.removeFirst() }
        while digits.last == UInt8(ascii: "0") {
            digits.removeLast()
            let (next, overflow) = exponent.addingReportingOverflow(1)
            guard !overflow else { return nil }
            exponent = next
        }
        if digits.isEmpty {
            negative = false
            exponent = 0
        }
        self.digits = digits
        self.exponent = exponent
    }
}
