import XCTest
import Foundation
@testable import CommHost

/// The strict JSON grammar (`JSONValidator`, the scanner the frame parser shares), row by row
/// against RFC 8259's corners.
final class WireJSONTests: XCTestCase {
    /// A row: the bytes of a value (wrapped as `{"v": value}` before checking) and the error
    /// name expected, or nil for valid.
    private struct Row {
        var bytes: [UInt8]
        var expected: WireError.Name?
        var note: String

        init(_ text: String, _ expected: WireError.Name?) {
            bytes = Array(text.utf8)
            self.expected = expected
            note = text
        }

        init(bytes: [UInt8], _ expected: WireError.Name?, _ note: String) {
            self.bytes = bytes
            self.expected = expected
            self.note = note
        }
    }

    private func wrapped(_ value: [UInt8]) -> [UInt8] { Array(#"{"v":"#.utf8) + value + [UInt8(ascii: "}")] }

    private func check(document: [UInt8], expected: WireError.Name?, maxDepth: Int = 256,
                       note: String, file: StaticString = #filePath, line: UInt = #line) {
        let accepted: Bool
        do {
            try JSONValidator.validateObject(document, maxDepth: maxDepth)
            XCTAssertNil(expected, "accepted but expected \(expected?.rawValue ?? ""): \(note)", file: file, line: line)
            accepted = true
        } catch {
            XCTAssertEqual(error.name, expected, "\(note): \(error)", file: file, line: line)
            accepted = false
        }
        // The manifest's DOM parser is the project's other JSON reader: it
        // must accept exactly the objects the wire accepts (duplicate keys
        // aside, which only the wire's envelope refuses).
        let domAccepted: Bool
        if let document = try? JSONDocument(parsing: document, options: .init(maxDepth: maxDepth, allowDuplicateKeys: true)),
           case .object = document.root.value {
            domAccepted = true
        } else {
            domAccepted = false
        }
        XCTAssertEqual(domAccepted, accepted, "JSONDocument and JSONValidator disagree on \(note)", file: file, line: line)
        // The frame parser's fast path and its general walk agree on the text as `data` and
        // as `metadata` (the same nesting limit for the text as above).
        let parser = FrameParser(dialect: .jupyter, limits: WireLimits(maxDepth: maxDepth + 2))
        let asData = Array(#"{"msg_type":"comm_msg","content":{"comm_id":"c","data":"#.utf8) + document + Array("}}".utf8)
        let asMetadata = Array(#"{"msg_type":"comm_msg","content":{"comm_id":"c"},"metadata":"#.utf8) + document + [UInt8(ascii: "}")]
        WireUsualFrameTests.checkAgreement(asData, parser, note: note, file: file, line: line)
        WireUsualFrameTests.checkAgreement(asMetadata, parser, note: note, file: file, line: line)
    }

    private func checkValues(_ rows: [Row], file: StaticString = #filePath, line: UInt = #line) {
        for row in rows {
            check(document: wrapped(row.bytes), expected: row.expected, note: row.note, file: file, line: line)
        }
    }

    func testNumbersFollowTheRFCGrammar() {
        checkValues([
            Row("0", nil), Row("-0", nil), Row("1", nil), Row("-1", nil), Row("10", nil),
            Row("1e5", nil), Row("1E+2", nil), Row("1e-2", nil), Row("0.5", nil), Row("-0.5", nil),
            Row("123.456e-7", nil), Row("0e0", nil), Row("-0.0E+0", nil), Row("9007199254740993", nil),
            Row("1e999", nil),
            Row("01", .invalidJSON), Row("-01", .invalidJSON), Row("00", .invalidJSON),
            Row("1.", .invalidJSON), Row(".5", .invalidJSON), Row("+1", .invalidJSON),
            Row("1e", .invalidJSON), Row("1e+", .invalidJSON), Row("1.e5", .invalidJSON),
            Row("-", .invalidJSON), Row("--1", .invalidJSON), Row("0x10", .invalidJSON),
            Row("NaN", .invalidJSON), Row("Infinity", .invalidJSON), Row("-Infinity", .invalidJSON),
            Row("1_000", .invalidJSON), Row("1.5.2", .invalidJSON),
        ])
    }

    func testStringEscapesAreExactlyTheRFCSet() {
        checkValues([
            Row(#""""#, nil), Row(#""abc""#, nil),
            Row(#""\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u00E9 \uFFFF""#, nil),
            Row(#""\x""#, .invalidJSON), Row(#""\'""#, .invalidJSON), Row(#""\a""#, .invalidJSON),
            Row(#""\u12""#, .invalidJSON), Row(#""\u12G4""#, .invalidJSON), Row(#""\U0041""#, .invalidJSON),
            Row(#""abc"#, .invalidJSON), Row(#""abc\"#, .invalidJSON), Row(#""\"#, .invalidJSON),
        ])
    }

    func testSurrogateEscapesMustComeInHighLowPairs() {
        checkValues([
            Row(#""\uD83D\uDE00""#, nil), Row(#""\ud83d\ude00""#, nil), Row(#""\uDBFF\uDFFF""#, nil),
            Row(#""\uD800""#, .invalidJSON), Row(#""\uDC00""#, .invalidJSON),
            Row(#""\uDE00\uD83D""#, .invalidJSON), Row(#""\uD800\u0041""#, .invalidJSON),
            Row(#""\uD800x""#, .invalidJSON), Row(#""\uDBFF\uDBFF""#, .invalidJSON),
            Row(#""\uD800\""#, .invalidJSON),
        ])
    }

    func testBareControlCharactersInStringsAreRejected() {
        var rows: [Row] = []
        for byte: UInt8 in [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] {
            rows.append(Row(bytes: [0x22, 0x61, byte, 0x62, 0x22], .invalidJSON, "control byte \(byte)"))
        }
        rows.append(Row(bytes: [0x22, 0x7F, 0x22], nil, "DEL may stand unescaped"))
        checkValues(rows)
    }

    func testUTF8InStringsMustBeWellFormed() {
        let q: UInt8 = 0x22
        func s(_ inner: [UInt8]) -> [UInt8] { [q] + inner + [q] }
        checkValues([
            Row(bytes: s([0xC3, 0xA9]), nil, "U+00E9"),
            Row(bytes: s([0xC2, 0x80]), nil, "U+0080, smallest 2-byte"),
            Row(bytes: s([0xDF, 0xBF]), nil, "U+07FF"),
            Row(bytes: s([0xE0, 0xA0, 0x80]), nil, "U+0800, smallest 3-byte"),
            Row(bytes: s([0xE2, 0x82, 0xAC]), nil, "euro sign"),
            Row(bytes: s([0xED, 0x9F, 0xBF]), nil, "U+D7FF, just below the surrogates"),
            Row(bytes: s([0xEE, 0x80, 0x80]), nil, "U+E000, just above the surrogates"),
            Row(bytes: s([0xEF, 0xBF, 0xBF]), nil, "U+FFFF"),
            Row(bytes: s([0xF0, 0x90, 0x80, 0x80]), nil, "U+10000, smallest 4-byte"),
            Row(bytes: s([0xF0, 0x9F, 0x98, 0x80]), nil, "emoji"),
            Row(bytes: s([0xF4, 0x8F, 0xBF, 0xBF]), nil, "U+10FFFF, the largest"),
            Row(bytes: s(Array("long ascii run then é: abcdefghijklmnopqrstuvwxyz".utf8)), nil, "ASCII then 2-byte"),
            Row(bytes: s([0xC0, 0x80]), .invalidUTF8, "overlong NUL"),
            Row(bytes: s([0xC1, 0xBF]), .invalidUTF8, "overlong 2-byte"),
            Row(bytes: s([0xE0, 0x80, 0x80]), .invalidUTF8, "overlong 3-byte"),
            Row(bytes: s([0xE0, 0x9F, 0xBF]), .invalidUTF8, "overlong U+07FF in 3 bytes"),
            Row(bytes: s([0xF0, 0x8F, 0xBF, 0xBF]), .invalidUTF8, "overlong U+FFFF in 4 bytes"),
            Row(bytes: s([0xED, 0xA0, 0x80]), .invalidUTF8, "U+D800 encoded in UTF-8"),
            Row(bytes: s([0xED, 0xBF, 0xBF]), .invalidUTF8, "U+DFFF encoded in UTF-8"),
            Row(bytes: s([0xF4, 0x90, 0x80, 0x80]), .invalidUTF8, "U+110000, above the range"),
            Row(bytes: s([0xF5, 0x80, 0x80, 0x80]), .invalidUTF8, "lead byte F5"),
            Row(bytes: s([0xFF]), .invalidUTF8, "byte FF"),
            Row(bytes: s([0xFE]), .invalidUTF8, "byte FE"),
            Row(bytes: s([0x80]), .invalidUTF8, "lone continuation byte"),
            Row(bytes: s([0x61, 0xBF, 0x61]), .invalidUTF8, "continuation byte after ASCII"),
            Row(bytes: s([0xC3]), .invalidUTF8, "2-byte sequence cut by the closing quote"),
            Row(bytes: s([0xE2, 0x82]), .invalidUTF8, "3-byte sequence cut short"),
            Row(bytes: s([0xF0, 0x9F, 0x98]), .invalidUTF8, "4-byte sequence cut short"),
            Row(bytes: s([0xC3, 0x28]), .invalidUTF8, "lead byte followed by ASCII"),
            Row(bytes: s([0xE2, 0x28, 0xA1]), .invalidUTF8, "3-byte lead followed by ASCII"),
        ])
    }

    func testNonASCIIBytesOutsideStringsAreNotJSON() {
        checkValues([
            Row(bytes: [0xC3, 0xA9], .invalidJSON, "UTF-8 letter as a value"),
        ])
        check(document: [0xEF, 0xBB, 0xBF] + Array(#"{"a":1}"#.utf8), expected: .invalidJSON, note: "byte order mark")
        check(document: Array("{\u{00A0}\"a\":1}".utf8), expected: .invalidJSON, note: "no-break space as whitespace")
    }

    func testLiteralsAreExact() {
        checkValues([
            Row("true", nil), Row("false", nil), Row("null", nil),
            Row("tru", .invalidJSON), Row("fals", .invalidJSON), Row("nul", .invalidJSON),
            Row("True", .invalidJSON), Row("NULL", .invalidJSON), Row("truex", .invalidJSON),
            Row("nulll", .invalidJSON), Row("undefined", .invalidJSON),
        ])
    }

    func testArraysAndObjectsHaveNoTrailingOrMissingCommas() {
        checkValues([
            Row("[]", nil), Row("[1]", nil), Row("[1,2]", nil), Row("[[],{}]", nil),
            Row(#"{"a":{"b":[]}}"#, nil), Row(#" [ 1 , 2 ] "#, nil),
            Row("[1,]", .invalidJSON), Row("[,1]", .invalidJSON), Row("[1,,2]", .invalidJSON),
            Row("[1 2]", .invalidJSON), Row("[", .invalidJSON), Row("[1", .invalidJSON),
            Row("[1}", .invalidJSON), Row(#"{"a":1,}"#, .invalidJSON), Row("{,}", .invalidJSON),
            Row(#"{"a"}"#, .invalidJSON), Row(#"{"a" 1}"#, .invalidJSON), Row("{a:1}", .invalidJSON),
            Row("{'a':1}", .invalidJSON), Row(#"{"a":1 "b":2}"#, .invalidJSON), Row(#"{"a":1]"#, .invalidJSON),
            Row(#"{1:2}"#, .invalidJSON),
        ])
        check(document: Array(#"{"a":1,,"b":2}"#.utf8), expected: .invalidJSON, note: "double comma in the outer object")
        check(document: Array(#"{"a":1"#.utf8), expected: .invalidJSON, note: "unclosed object")
    }

    func testOnlyTheFourRFCWhitespaceBytesSurroundTokens() {
        check(document: Array(" \t\r\n{ \"a\" \t:\r\n1 } \n".utf8), expected: nil, note: "space, tab, CR, LF")
        check(document: Array("{\u{0C}\"a\":1}".utf8), expected: .invalidJSON, note: "form feed")
        check(document: Array("{\"a\":1 /* c */}".utf8), expected: .invalidJSON, note: "comment")
        check(document: Array("{\"a\":1}\u{0}".utf8), expected: .invalidJSON, note: "NUL after the object")
    }

    func testDocumentMustBeExactlyOneObject() {
        check(document: Array(#"{"a":1}{"b":2}"#.utf8), expected: .invalidJSON, note: "two objects")
        check(document: Array(#"{"a":1} x"#.utf8), expected: .invalidJSON, note: "garbage after")
        check(document: [], expected: .invalidJSON, note: "empty")
        check(document: Array("  \n".utf8), expected: .invalidJSON, note: "only whitespace")
        check(document: Array("[1]".utf8), expected: .invalidFrame, note: "array")
        check(document: Array(#""s""#.utf8), expected: .invalidFrame, note: "string")
        check(document: Array("1".utf8), expected: .invalidFrame, note: "number")
        check(document: Array("null".utf8), expected: .invalidFrame, note: "null")
        check(document: Array("[1,]".utf8), expected: .invalidJSON, note: "invalid array is invalid JSON first")
    }

    func testNestingAtTheDepthLimitIsAcceptedAndOneDeeperIsNot() {
        // {"a":{"a":...{}}} with `levels` objects in all.
        func objects(_ levels: Int) -> [UInt8] {
            Array((String(repeating: #"{"a":"#, count: levels - 1) + "{}" + String(repeating: "}", count: levels - 1)).utf8)
        }
        func arrays(_ levels: Int) -> [UInt8] {
            Array((#"{"a":"# + String(repeating: "[", count: levels - 1) + String(repeating: "]", count: levels - 1) + "}").utf8)
        }
        check(document: objects(5), expected: nil, maxDepth: 5, note: "5 objects, limit 5")
        check(document: objects(6), expected: .depthLimit, maxDepth: 5, note: "6 objects, limit 5")
        check(document: arrays(5), expected: nil, maxDepth: 5, note: "object + 4 arrays, limit 5")
        check(document: arrays(6), expected: .depthLimit, maxDepth: 5, note: "object + 5 arrays, limit 5")
        check(document: objects(256), expected: nil, note: "256 objects, default limit")
        check(document: objects(257), expected: .depthLimit, note: "257 objects, default limit")
        check(document: arrays(256), expected: nil, note: "256 levels of arrays, default limit")
        check(document: arrays(257), expected: .depthLimit, note: "257 levels of arrays, default limit")
    }

    func testContainersBeyondSixtyFourLevelsKeepTheirKinds() {
        // Alternating objects and arrays 150 deep, then members after the deep part at several
        // levels: the scanner must still know which closer and separator each level takes.
        var text = "{\"a\":"
        for level in 1..<150 { text += level % 2 == 1 ? "[" : "{\"k\":" }
        text += "1"
        for level in stride(from: 149, through: 1, by: -1) { text += level % 2 == 1 ? ",2]" : ",\"m\":3}" }
        text += ",\"z\":[]}"
        check(document: Array(text.utf8), expected: nil, note: "150 alternating levels")
        let wrongCloser = text.replacingOccurrences(of: ",2],\"m\":3}", with: ",2},\"m\":3}")
        XCTAssertNotEqual(wrongCloser, text)
        check(document: Array(wrongCloser.utf8), expected: .invalidJSON, note: "'}' closing an array deep down")
    }

    func testErrorsNameTheByteOffsetAndWhatWasExpected() {
        let text = Array(#"{"a":1,"b":2]"#.utf8)
        XCTAssertThrowsError(try JSONValidator.validateObject(text, maxDepth: 8)) { error in
            XCTAssertEqual((error as? WireError)?.evalue, "invalid JSON at byte 12: expected ',' or '}', found ']'")
        }
        XCTAssertThrowsError(try JSONValidator.validateObject(Array(#"{"a":"#.utf8), maxDepth: 8)) { error in
            XCTAssertEqual((error as? WireError)?.evalue, "invalid JSON at byte 5: expected a value, found the end of the input")
        }
    }

    func testLongStringsWithEscapesAndUnicodeAreScannedAcrossWordBoundaries() {
        // The scanner checks 8 bytes at a time; put the interesting byte at every offset.
        for offset in 0..<17 {
            let pad = String(repeating: "x", count: offset)
            check(document: Array("{\"v\":\"\(pad)\\n\(pad)é\(pad)\"}".utf8), expected: nil, note: "offset \(offset)")
            check(document: Array("{\"v\":\"\(pad)\u{1}\(pad)\"}".utf8), expected: .invalidJSON, note: "control at \(offset)")
            check(document: Array("{\"v\":\"\(pad)".utf8) + [0xFF] + Array("\"}".utf8), expected: .invalidUTF8, note: "FF at \(offset)")
            check(document: Array("{\"v\":\"\(pad)\"}".utf8), expected: nil, note: "quote at \(offset)")
        }
    }
}
