/// A JSON text parsed strictly by RFC 8259 into a tree that remembers, for
/// every value, where it was in the source: its byte range and 1-based line.
/// Used where a person wrote the JSON (the manifest, plugin configs) and a
/// message must point at the line to fix. Not for the wire's hot path.
///
/// The grammar is the wire's: ``JSONScanner`` steps over every token and
/// container, so a text is JSON here exactly when it is JSON in a frame
/// (duplicate names aside, which each reader treats its own way); this type
/// adds the tree, the lines and the path, and words what the scanner finds
/// for a person fixing a file.
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
        let result: Result<Node, SyntaxError> = source.withUnsafeBytes { buffer in
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

        /// "line L, column C: message" (with " (at PATH)" when not at the root).
        public var description: String {
            let at = path.components.isEmpty ? "" : " (at \(path))"
            return "line \(line), column \(column): \(message)\(at)"
        }
    }
}

// MARK: - Parser

extension JSONDocument {
    /// Recursive descent over the wire's ``JSONScanner``: the scanner steps over every token and
    /// container and decides what is JSON, exactly as for a frame; this reader builds the tree,
    /// keeps lines and the JSON path, refuses duplicate names, and words what the scanner found
    /// for a person fixing a file. Recursion depth is bounded by `Options.maxDepth`.
    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let options: Options
        var scanner: JSONScanner
        var path: [Path.Component] = []
        /// Newlines are counted up to `countedTo`, which is on line `countedLine`.
        var countedTo = 0
        var countedLine = 1

        init(bytes: UnsafeRawBufferPointer, options: Options) {
            self.bytes = bytes.assumingMemoryBound(to: UInt8.self)
            self.options = options
            scanner = JSONScanner(bytes, maxDepth: options.maxDepth)
        }

        mutating func parseDocument() throws(SyntaxError) -> Node {
            if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
                throw error("byte order mark (U+FEFF) before the JSON text; save the file as UTF-8 without BOM", at: 0)
            }
            scanner.skipWhitespace()
            let root = try parseValue(depth: 0)
            do throws(WireError) { try scanner.expectEnd("the end of the JSON text") } catch { throw reword(error) }
            return root
        }

        // MARK: values

        mutating func parseValue(depth: Int) throws(SyntaxError) -> Node {
            let start = scanner.pos
            let startLine = line(at: start)
            let value: Value
            switch scanner.currentKind {
            case .object?: value = try parseObject(depth: depth + 1)
            case .array?: value = try parseArray(depth: depth + 1)
            case .string?:
                let token: StringToken
                do throws(WireError) { token = try scanner.scanString() } catch { throw reword(error) }
                value = .string(scanner.string(token))
            case .number?:
                do throws(WireError) { try scanner.scanNumber() } catch { throw reword(error) }
                let text = UnsafeBufferPointer(rebasing: bytes[start..<scanner.pos])
                value = .number(String(decoding: text, as: UTF8.self))
            case .boolean?:
                let isTrue = scanner.current == UInt8(ascii: "t")
                let word: StaticString = isTrue ? "true" : "false"
                do throws(WireError) { try scanner.scanLiteral(word) } catch { throw reword(error) }
                value = .bool(isTrue)
            case .null?:
                do throws(WireError) { try scanner.scanLiteral("null") } catch { throw reword(error) }
                value = .null
            case nil:
                throw error(notAValue(scanner.current), at: start)
            }
            return Node(value: value, range: start..<scanner.pos, line: startLine)
        }

        /// Why no value starts with `byte` (nil: the end of the text).
        func notAValue(_ byte: UInt8?) -> String {
            switch byte {
            case nil: "unexpected end of input, expected a value"
            case UInt8(ascii: "'")?: "strings must use double quotes"
            case UInt8(ascii: "/")?: "comments are not allowed in JSON"
            case let byte?: "unexpected \(JSONScanner.describeByte(byte)), expected a value"
            }
        }

        mutating func parseObject(depth: Int) throws(SyntaxError) -> Value {
            var members: [Member] = []
            var seen: [[UInt8]: Int] = [:]
            let empty: Bool
            do throws(WireError) { empty = try !scanner.enterObject(depth: depth) } catch { throw reword(error) }
            if empty { return .object(members) }
            var more = true
            while more {
                let keyOffset = scanner.pos
                let keyLine = line(at: keyOffset)
                let key: String
                do throws(WireError) {
                    key = scanner.string(try scanner.readKey())
                } catch {
                    // The name was read before its ':' was missed: a duplicate name comes first in the text.
                    if !options.allowDuplicateKeys, case .expected(.colon)? = error.fault?.reason {
                        var name = scanner
                        name.pos = keyOffset
                        if let token = try? name.scanString() {
                            try admit(name.string(token), line: keyLine, at: keyOffset, to: &seen)
                        }
                    }
                    throw reword(error)
                }
                if !options.allowDuplicateKeys { try admit(key, line: keyLine, at: keyOffset, to: &seen) }
                path.append(.key(key))
                let value = try parseValue(depth: depth)
                path.removeLast()
                members.append(Member(key: key, keyLine: keyLine, value: value))
                do throws(WireError) { more = try scanner.nextMember() } catch { throw reword(error) }
            }
            return .object(members)
        }

        /// Records member name `key`, written at `offset` on `line`, among the names `seen` in its
        /// object; throws when it is there already.
        mutating func admit(_ key: String, line: Int, at offset: Int,
                            to seen: inout [[UInt8]: Int]) throws(SyntaxError) {
            let keyBytes = Array(key.utf8)
            if let first = seen[keyBytes] {
                path.append(.key(key))
                throw error("duplicate member name \(JSONText.string(key)) (first at line \(first))", at: offset)
            }
            seen[keyBytes] = line
        }

        mutating func parseArray(depth: Int) throws(SyntaxError) -> Value {
            var elements: [Node] = []
            let empty: Bool
            do throws(WireError) { empty = try !scanner.enterArray(depth: depth) } catch { throw reword(error) }
            if empty { return .array(elements) }
            var more = true
            while more {
                if scanner.current == UInt8(ascii: "]") { throw error("trailing comma before ']'", at: scanner.pos) }
                path.append(.index(elements.count))
                elements.append(try parseValue(depth: depth))
                path.removeLast()
                do throws(WireError) { more = try scanner.nextElement() } catch { throw reword(error) }
            }
            return .array(elements)
        }

        // MARK: errors

        /// What the scanner found, worded for a person editing the file, at the place it names.
        mutating func reword(_ wireError: WireError) -> SyntaxError {
            guard let fault = wireError.fault else { return error(wireError.evalue, at: scanner.pos) }
            let at = fault.offset
            let found = at < bytes.count ? bytes[at] : nil
            let describe = found.map(JSONScanner.describeByte)
            switch fault.reason {
            case .expected(let expected):
                switch expected {
                case .value:
                    return error(notAValue(found), at: at)
                case .memberName:
                    if found == UInt8(ascii: "}") { return error("trailing comma before '}'", at: at) }
                    return error(describe.map { "expected a member name in double quotes, found \($0)" }
                                 ?? "unexpected end of input, expected a member name", at: at)
                case .colon:
                    return error(missing("':'", after: "the member name", found: describe), at: at)
                case .commaOrBrace:
                    return error(missing("',' or '}'", after: "a member", found: describe), at: at)
                case .commaOrBracket:
                    return error(missing("',' or ']'", after: "an element", found: describe), at: at)
                case .escapeCharacter:
                    return error("unexpected end of input in an escape", at: at)
                case .escapeLetter:
                    let letter = String(UnicodeScalar(found ?? 0))
                    return error("invalid escape '\\\(letter)'; valid are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX", at: at - 1)
                case .hexDigit:
                    return error(describe.map { "\\u must be followed by four hex digits, found \($0)" }
                                 ?? "unexpected end of input in a \\u escape", at: at)
                case .digit:
                    return error(describe.map { "expected a digit after '-', found \($0)" }
                                 ?? "unexpected end of input in a number", at: at)
                case .digitAfterDecimalPoint:
                    return error("expected a digit after the decimal point", at: at)
                case .digitInExponent:
                    return error("expected a digit in the exponent", at: at)
                case .literal(let word):
                    return error(describe.map { "unexpected \($0), expected \(word)" }
                                 ?? "unexpected end of input, expected \(word)", at: at)
                case .end:
                    return error("unexpected \(describe ?? "end of input") after the JSON value", at: at)
                }
            case .unterminatedString:
                return error("unexpected end of input inside a string", at: at)
            case .unpairedHighSurrogate, .highSurrogateFollowedBy:
                return error("\\u escape of a high surrogate not followed by a low surrogate escape", at: at)
            case .loneLowSurrogate:
                return error("\\u escape of a low surrogate without a high surrogate before it", at: at)
            case .leadingZero:
                return error("numbers must not have leading zeros", at: at + 1)
            case .controlCharacter(let byte):
                let (name, hint) = (JSONScanner.describeByte(byte), escapeHint(byte))
                return error("control character \(name) inside a string; write it as an escape (\(hint))", at: at)
            case .tooDeep(let maxDepth):
                return error("nesting deeper than \(maxDepth) levels", at: at)
            case .invalidUTF8(let how):
                return error("invalid UTF-8 inside a string: \(how)", at: at)
            }
        }

        /// "expected `what` after `place`, found `found`", or at the end of the text "unexpected
        /// end of input, expected `what`".
        func missing(_ what: String, after place: String, found: String?) -> String {
            found.map { "expected \(what) after \(place), found \($0)" } ?? "unexpected end of input, expected \(what)"
        }

        /// An error at byte `offset`, in the value `path` names.
        mutating func error(_ message: String, at offset: Int) -> SyntaxError {
            let position = min(offset, bytes.count)
            var lineStart = position
            while lineStart > 0 && bytes[lineStart - 1] != UInt8(ascii: "\n") { lineStart -= 1 }
            var column = 1
            for byte in bytes[lineStart..<position] where byte & 0xC0 != 0x80 { column += 1 }
            let number = line(at: position)
            return SyntaxError(message: message, offset: position, line: number, column: column, path: Path(path))
        }

        /// The 1-based line of byte `offset`. Newlines stand only between tokens, and values are
        /// asked about in source order, so counting goes on from the last offset asked about.
        mutating func line(at offset: Int) -> Int {
            if offset < countedTo {
                countedTo = 0
                countedLine = 1
            }
            for byte in bytes[countedTo..<offset] where byte == UInt8(ascii: "\n") { countedLine += 1 }
            countedTo = offset
            return countedLine
        }

        func escapeHint(_ byte: UInt8) -> String {
            switch byte {
            case 0x0A: "\\n"
            case 0x0D: "\\r"
            case 0x09: "\\t"
            default: "\\u00" + SHA256.hex([byte])
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
