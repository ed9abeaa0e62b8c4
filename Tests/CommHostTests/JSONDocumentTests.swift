import XCTest
import CommHost

/// The strict JSON DOM: what it accepts and refuses (RFC 8259), and the
/// positions it records.
final class JSONDocumentTests: XCTestCase {
    private func parse(_ text: String, _ options: JSONDocument.Options = .init()) throws -> JSONDocument {
        try JSONDocument(parsing: text, options: options)
    }

    private func syntaxError(_ bytes: [UInt8], _ options: JSONDocument.Options = .init(),
                             file: StaticString = #filePath, line: UInt = #line) -> JSONDocument.SyntaxError? {
        do {
            _ = try JSONDocument(parsing: bytes, options: options)
            XCTFail("accepted \(String(decoding: bytes, as: UTF8.self).debugDescription)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func syntaxError(_ text: String, _ options: JSONDocument.Options = .init(),
                             file: StaticString = #filePath, line: UInt = #line) -> JSONDocument.SyntaxError? {
        syntaxError(Array(text.utf8), options, file: file, line: line)
    }

    func testAcceptsEveryValidDocumentInTheTable() {
        let valid = [
            "{}", "[]", "0", "-0", "1", "-1", "123", "1.5", "-0.0", "1e5", "1E+5", "1e-5", "0.1e10", "12.34E-56",
            "\"\"", "\"a\"", "true", "false", "null", " \t\r\n{} \n",
            "{\"a\":1,\"b\":[1,2,{\"c\":null}]}", "[[[[]]]]", "{\"\":\"\"}",
            "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\"\\u0041\\u00e9\\uFFFF\"", "\"\\ud83d\\ude00\"",
            "\"é日本😀\"", "\"\u{7F}\"", "[1,\n2\n,3]",
        ]
        for text in valid {
            XCTAssertNoThrow(try parse(text), text.debugDescription)
        }
    }

    func testRefusesEveryInvalidDocumentInTheTable() {
        let invalid: [(String, String)] = [
            ("", "end of input"),
            ("   ", "end of input"),
            ("[1,]", "trailing comma before ']'"),
            ("{\"a\":1,}", "trailing comma before '}'"),
            ("[1 2]", "expected ',' or ']'"),
            ("{\"a\" 1}", "expected ':'"),
            ("{a:1}", "expected a member name"),
            ("['a']", "double quotes"),
            ("// c\n{}", "comments"),
            ("{} /* c */", "after the JSON value"),
            ("{}{}", "after the JSON value"),
            ("01", "leading zeros"),
            ("-01", "leading zeros"),
            ("+1", "expected a value"),
            (".5", "expected a value"),
            ("1.", "decimal point"),
            ("1.e5", "decimal point"),
            ("1e", "exponent"),
            ("1e+", "exponent"),
            ("-", "end of input"),
            ("-a", "expected a digit"),
            ("NaN", "expected a value"),
            ("Infinity", "expected a value"),
            ("tru", "expected true"),
            ("nul", "expected null"),
            ("True", "expected a value"),
            ("\"abc", "end of input inside a string"),
            ("\"a\nb\"", "control character"),
            ("\"a\tb\"", "control character"),
            ("\"\\x\"", "invalid escape"),
            ("\"\\u12\"", "four hex digits"),
            ("\"\\ud83d\"", "high surrogate"),
            ("\"\\ud83d\\u0041\"", "high surrogate"),
            ("\"\\ude00\"", "low surrogate"),
            ("[", "end of input"),
            ("{\"a\":", "end of input"),
        ]
        for (text, expected) in invalid {
            guard let error = syntaxError(text) else { continue }
            XCTAssertTrue(error.message.contains(expected), "\(text.debugDescription): \(error.message)")
        }
    }

    func testRefusesInvalidUTF8InsideStrings() {
        let cases: [[UInt8]] = [
            [0x22, 0xC0, 0x80, 0x22],             // overlong NUL
            [0x22, 0xE0, 0x80, 0x80, 0x22],       // overlong 3-byte
            [0x22, 0xED, 0xA0, 0x80, 0x22],       // encoded surrogate U+D800
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], // above U+10FFFF
            [0x22, 0xC3, 0x22],                   // truncated
            [0x22, 0xFF, 0x22],                   // never valid
            [0x22, 0x80, 0x22],                   // lone continuation byte
        ]
        for bytes in cases {
            guard let error = syntaxError(bytes) else { continue }
            XCTAssertTrue(error.message.contains("UTF-8"), "\(bytes): \(error.message)")
        }
    }

    func testRefusesNonASCIIOutsideStringsAndByteOrderMark() {
        XCTAssertNotNil(syntaxError([0xEF, 0xBB, 0xBF, 0x7B, 0x7D]))
        XCTAssertNotNil(syntaxError("{}\u{A0}"))
        XCTAssertNotNil(syntaxError("[1,\u{3000}2]"))
    }

    func testSyntaxErrorGivesLineColumnAndPath() throws {
        let text = "{\n  \"targets\": [\n    {\"a\": 1},\n    {\"b\": [1, 2,]}\n  ]\n}"
        let error = try XCTUnwrap(syntaxError(text))
        XCTAssertEqual(error.line, 4)
        XCTAssertEqual(error.column, 17)
        XCTAssertEqual(error.path.description, "targets[1].b")
        XCTAssertEqual(error.description, "line 4, column 17: trailing comma before ']' (at targets[1].b)")
    }

    func testColumnCountsUnicodeScalarsNotBytes() throws {
        let error = try XCTUnwrap(syntaxError("[\"日本\", x]"))
        XCTAssertEqual(error.line, 1)
        XCTAssertEqual(error.column, 8)
    }

    func testDuplicateKeyIsRefusedWithPathAndLineByDefault() throws {
        let error = try XCTUnwrap(syntaxError("{\"limits\": {\n \"a\": 1,\n \"a\": 2}}"))
        XCTAssertEqual(error.line, 3)
        XCTAssertEqual(error.path.description, "limits.a")
        XCTAssertTrue(error.message.contains("duplicate member name \"a\" (first at line 2)"), error.message)
    }

    func testDuplicateKeysComparedByCodePointsAfterUnescaping() throws {
        XCTAssertNotNil(syntaxError("{\"a\": 1, \"\\u0061\": 2}"))
        // Precomposed and decomposed é are different code points, so different names.
        XCTAssertNoThrow(try parse("{\"\u{E9}\": 1, \"e\u{301}\": 2}"))
    }

    func testDuplicateKeysAreKeptInOrderWhenAllowed() throws {
        let document = try parse("{\"a\": 1, \"a\": 2}", .init(allowDuplicateKeys: true))
        guard case .object(let members) = document.root.value else { return XCTFail("not an object") }
        XCTAssertEqual(members.map(\.key), ["a", "a"])
        XCTAssertEqual(document.root["a"]?.intValue, 1)
    }

    func testNestingDepthLimitIsExact() {
        let limit = 256
        let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        XCTAssertNoThrow(try parse(deepest))
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        XCTAssertTrue(syntaxError(tooDeep)?.message.contains("nesting deeper than 256") ?? false)
        XCTAssertNotNil(syntaxError("{\"a\":{\"b\":[]}}", .init(maxDepth: 2)))
        XCTAssertNoThrow(try parse("{\"a\":{\"b\":1}}", .init(maxDepth: 2)))
    }

    func testRecordsByteRangeAndLineOfEveryValue() throws {
        let text = "{\n  \"name\": \"x\",\n  \"list\": [1, {\"k\": true}],\n  \"n\": -1.5e3\n}"
        let document = try parse(text)
        XCTAssertEqual(document.root.line, 1)
        XCTAssertEqual(document.root.range, 0..<text.utf8.count)
        let name = try XCTUnwrap(document.root["name"])
        XCTAssertEqual(name.line, 2)
        XCTAssertEqual(String(decoding: document.sourceBytes(of: name), as: UTF8.self), "\"x\"")
        let list = try XCTUnwrap(document.root["list"])
        XCTAssertEqual(list.line, 3)
        XCTAssertEqual(String(decoding: document.sourceBytes(of: list), as: UTF8.self), "[1, {\"k\": true}]")
        guard case .array(let elements) = list.value else { return XCTFail("not an array") }
        XCTAssertEqual(String(decoding: document.sourceBytes(of: elements[1]), as: UTF8.self), "{\"k\": true}")
        XCTAssertEqual(elements[1]["k"]?.value, .bool(true))
        let number = try XCTUnwrap(document.root["n"])
        XCTAssertEqual(number.value, .number("-1.5e3"))
        XCTAssertEqual(number.line, 4)
        guard case .object(let members) = document.root.value else { return XCTFail("not an object") }
        XCTAssertEqual(members.map(\.keyLine), [2, 3, 4])
    }

    func testDecodesEscapesAndSurrogatePairs() throws {
        let document = try parse("\"a\\n\\u00e9\\ud83d\\ude00\\/\"")
        XCTAssertEqual(document.root.value, .string("a\né😀/"))
    }

    func testIntValueOnlyForIntegerLiteralsThatFit() throws {
        XCTAssertEqual(try parse("42").root.intValue, 42)
        XCTAssertEqual(try parse("-7").root.intValue, -7)
        XCTAssertNil(try parse("1.0").root.intValue)
        XCTAssertNil(try parse("1e3").root.intValue)
        XCTAssertNil(try parse("99999999999999999999").root.intValue)
        XCTAssertNil(try parse("\"1\"").root.intValue)
    }

    func testSameValueIgnoresFormattingMemberOrderAndNumberSpelling() throws {
        func same(_ a: String, _ b: String) throws -> Bool {
            try parse(a).root.isSameValue(as: parse(b).root)
        }
        XCTAssertTrue(try same("{\"a\": [1, 2], \"b\": {\"c\": null}}", "{\"b\":{\"c\":null},\"a\":[1,2]}"))
        XCTAssertTrue(try same("1", "1.0"))
        XCTAssertTrue(try same("100", "1e2"))
        XCTAssertTrue(try same("0.5", "5E-1"))
        XCTAssertTrue(try same("-0", "0"))
        XCTAssertTrue(try same("\"\\u0041\"", "\"A\""))
        XCTAssertFalse(try same("1", "1.0000000000000000000001"))
        XCTAssertFalse(try same("[1, 2]", "[2, 1]"))
        XCTAssertFalse(try same("{\"a\": 1}", "{\"a\": 1, \"b\": 2}"))
        XCTAssertFalse(try same("\"\u{E9}\"", "\"e\u{301}\""))
        XCTAssertFalse(try same("1", "\"1\""))
        XCTAssertFalse(try same("null", "false"))
    }

    func testPathWritesNonIdentifierKeysInBrackets() {
        let path = JSONDocument.Path().appending("targets").appending(2).appending("a key").appending("x_1")
        XCTAssertEqual(path.description, "targets[2][\"a key\"].x_1")
        XCTAssertEqual(JSONDocument.Path().description, "")
    }
}
