@testable import CommPluginKit
import Foundation
import XCTest

/// The kit's own JSON coder (Sources/CommPluginKit/JSON), through
/// `JSONCoding` as every kit API uses it: round trips, the text it writes
/// (checked against Foundation's `JSONEncoder` with `.sortedKeys` and
/// `.withoutEscapingSlashes`, the kit's format before), strict RFC 8259
/// reading, numbers, strings, and error messages that say where and why.
final class JSONCodingTests: XCTestCase {
    // MARK: Helpers

    private func text(_ value: some Encodable) throws -> String {
        String(decoding: try JSONCoding.encode(value, what: "the value"), as: UTF8.self)
    }

    private func foundationText(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try JSONCoding.decode(T.self, from: Array(json.utf8), what: "the data", status: .invalidArgument)
    }

    /// The message of the `PluginError` decoding `bytes` as `T` throws (fails the test if none).
    private func decodeError<T: Decodable>(_ type: T.Type, bytes: [UInt8],
                                           file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let value = try JSONCoding.decode(T.self, from: bytes, what: "the data", status: .invalidArgument)
            XCTFail("decoded \(value) from \(String(decoding: bytes, as: UTF8.self))", file: file, line: line)
            return ""
        } catch let error as PluginError {
            XCTAssertEqual(error.status, .invalidArgument, file: file, line: line)
            return error.message
        } catch {
            XCTFail("not a PluginError: \(error)", file: file, line: line)
            return ""
        }
    }

    private func decodeError<T: Decodable>(_ type: T.Type, _ json: String,
                                           file: StaticString = #filePath, line: UInt = #line) -> String {
        decodeError(type, bytes: Array(json.utf8), file: file, line: line)
    }

    private struct Point: Codable, Equatable {
        var x: Int
        var y: Double
        var label: String?
    }

    private enum Shape: Codable, Equatable {
        case circle(radius: Double)
        case polygon([Point])
        case empty
    }

    private struct Document: Codable, Equatable {
        var title: String
        var shapes: [Shape]
        var tags: Set<String>
        var counts: [String: Int]
        var byNumber: [Int: String]
        var matrix: [[Int8]]
        var flags: [Bool?]
        var wide: UInt64
        var narrow: Int16
        var ratio: Float
        var nested: [String: [String: [UInt8]]]
    }

    private let document = Document(
        title: "Ünïcødé \"quoted\" \\ back/slash\n😀",
        shapes: [.circle(radius: 2.5), .polygon([Point(x: -1, y: 0.1, label: nil), Point(x: 3, y: 1e20, label: "tab\t")]), .empty],
        tags: ["a", "b"], counts: ["zeta": 1, "Alpha": 2, "_meta": 3, "a10": 4, "a9": 5, "é": 6],
        byNumber: [1: "one", 10: "ten"], matrix: [[1, -128], [], [127]], flags: [true, nil, false],
        wide: .max, narrow: .min, ratio: 0.1, nested: ["x": ["y": [0, 255]], "empty": [:]])

    // MARK: Round trips

    func testADocumentOfEveryShapeRoundTrips() throws {
        let bytes = try JSONCoding.encode(document, what: "the document")
        XCTAssertEqual(try JSONCoding.decode(Document.self, from: bytes, what: "it", status: .invalidArgument), document)
    }

    func testWidgetValuesAndStatesRoundTripWithBinaryLeavesAsBase64() throws {
        let state: WidgetState = ["value": .bytes([0, 1, 2, 250]), "n": 3, "x": 1.5, "list": [.bytes([9]), "s", nil, true],
                                  "deep": ["k": .bytes([])]]
        let bytes = try JSONCoding.encode(state, what: "the state")
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self),
                       #"{"buffer_paths":[["deep","k"],["list",0],["value"]],"buffers":["","CQ==","AAEC+g=="],"#
                       + #""state":{"deep":{},"list":[null,"s",null,true],"n":3,"x":1.5}}"#)
        XCTAssertEqual(try JSONCoding.decode(WidgetState.self, from: bytes, what: "it", status: .invalidArgument), state)
        let value: WidgetValue = ["a": [1, 2.5, "three", nil, false, ["b": []]]]
        XCTAssertEqual(try decode(WidgetValue.self, try text(value)), value)
    }

    func testSuperEncoderAndSuperDecoderNestAClassHierarchy() throws {
        let dog = Dog(name: "Rex", sound: "woof")
        let json = try text(dog)
        XCTAssertEqual(json, #"{"sound":"woof","super":{"name":"Rex"}}"#)
        XCTAssertEqual(json, try foundationText(dog))
        let back = try decode(Dog.self, json)
        XCTAssertEqual([back.name, back.sound], ["Rex", "woof"])
    }

    // MARK: The text it writes

    func testOutputIsFoundationsWithSortedKeysAndUnescapedSlashes() throws {
        XCTAssertEqual(try text(document), try foundationText(document))
        let state: WidgetState = ["value": .bytes(Array(0...255)), "description": "a/b", "_model_name": "ImageModel"]
        XCTAssertEqual(try text(state), try foundationText(state))
    }

    func testKeysAreSortedByTheirUTF8Bytes() throws {
        XCTAssertEqual(try text(["b": 1, "B": 2, "_m": 3, "a10": 4, "a9": 5, "é": 6, "z": 7, "": 8]),
                       #"{"":8,"B":2,"_m":3,"a10":4,"a9":5,"b":1,"z":7,"é":6}"#)
    }

    func testStringsEscapeQuotesBackslashesAndControlCharactersOnly() throws {
        let every = String((0..<0x80).map { Character(Unicode.Scalar(UInt8($0))) }) + "é😀\u{2028}\u{FEFF}"
        XCTAssertEqual(try text([every]), try foundationText([every]))
        XCTAssertEqual(try text(["\u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\"\\/\u{7F}"]),
                       #"["\u0000\u0001\b\t\n\f\r\u001f\"\\/"# + "\u{7F}\"]")
    }

    func testNumbersAreWrittenAsFoundationWritesThem() throws {
        let doubles: [Double] = [0, -0.0, 1, -1, 1.5, 0.1, 1e15, 1e16, 1e20, 1e-7, 123456789.125, .pi, .leastNonzeroMagnitude,
                                 .greatestFiniteMagnitude, -.leastNormalMagnitude, 2.5e-5, 100]
        XCTAssertEqual(try text(doubles), "[0,-0,1,-1,1.5,0.1,1000000000000000,1e+16,1e+20,1e-07,123456789.125,"
                       + "3.141592653589793,5e-324,1.7976931348623157e+308,-2.2250738585072014e-308,2.5e-05,100]")
        XCTAssertEqual(try text(doubles), try foundationText(doubles))
        let floats: [Float] = [0.1, 1, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        XCTAssertEqual(try text(floats), try foundationText(floats))
        XCTAssertEqual(try text([Int64.min, Int64.max]), "[-9223372036854775808,9223372036854775807]")
        XCTAssertEqual(try text([UInt64.max]), "[18446744073709551615]")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let value = Double(bitPattern: generator.next())
            guard value.isFinite else { continue }
            XCTAssertEqual(try text([value]), try foundationText([value]))
            XCTAssertEqual(try decode([Double].self, try text([value])).first?.bitPattern, value.bitPattern, "\(value)")
        }
    }

    func testNilOptionalsAreLeftOutAndNilsInArraysAreNull() throws {
        XCTAssertEqual(try text(Point(x: 1, y: 2, label: nil)), #"{"x":1,"y":2}"#)
        XCTAssertEqual(try text([nil, 1] as [Int?]), "[null,1]")
    }

    func testAValueThatWritesNothingIsAnEmptyObject() throws {
        struct Nothing: Encodable {
            func encode(to encoder: any Encoder) throws {}
        }
        XCTAssertEqual(try text(Nothing()), "{}")
        XCTAssertEqual(try text([Nothing()]), "[{}]")
    }

    func testTopLevelScalarsAreWrittenAndRead() throws {
        XCTAssertEqual(try text("x"), #""x""#)
        XCTAssertEqual(try text(42), "42")
        XCTAssertEqual(try decode(String.self, #" "x" "#), "x")
        XCTAssertEqual(try decode(Int?.self, "null"), nil)
    }

    func testNaNAndInfinityCannotBeEncodedAndTheErrorSaysWhere() throws {
        struct Reading: Encodable { var values: [Double] }
        XCTAssertThrowsError(try JSONCoding.encode(Reading(values: [1, .nan]), what: "the reading")) { error in
            let message = (error as? PluginError)?.message ?? "\(error)"
            XCTAssertEqual(message, "cannot encode the reading as JSON: at values[1]: Double nan cannot be written as JSON, "
                           + "which has no NaN or infinity")
        }
        XCTAssertThrowsError(try JSONCoding.encode([Float.infinity], what: "it"))
    }

    func testNestingDeeperThanTheLimitIsRefusedBothWays() throws {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        XCTAssertTrue(decodeError(WidgetValue.self, deep).contains("invalid JSON at byte 512: arrays and objects nested more than 512 deep"))
        var value = WidgetValue.null
        for _ in 0..<600 { value = .array([value]) }
        XCTAssertThrowsError(try JSONCoding.encode(value, what: "it")) { error in
            XCTAssertTrue("\(error)".contains("nested more than 512 deep"), "\(error)")
        }
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        XCTAssertNoThrow(try decode(WidgetValue.self, ok))
    }

    // MARK: Reading strings

    func testEveryEscapeReadsAsItsCharacter() throws {
        XCTAssertEqual(try decode(String.self, #""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\u0000""#),
                       "\"\\/\u{8}\u{C}\n\r\tAé€\u{0}")
    }

    func testSurrogatePairEscapesReadAsOneScalar() throws {
        XCTAssertEqual(try decode(String.self, #""\ud83d\ude00 \uD834\uDD1E""#), "😀 𝄞")
    }

    func testUTF8TextReadsUnchanged() throws {
        let text = "naïve café 日本語 😀 \u{10FFFF}"
        XCTAssertEqual(try decode([String: String].self, "{\"\(text)\": \"\(text)\"}"), [text: text])
    }

    func testUnpairedSurrogateEscapesAreRefusedWithTheReason() {
        XCTAssertTrue(decodeError(String.self, #""ab\ud800""#).hasSuffix(
            #"invalid JSON at byte 3: high surrogate \uD800 is not followed by a low surrogate escape"#))
        XCTAssertTrue(decodeError(String.self, #""\ud800\u0041""#).hasSuffix(
            #"invalid JSON at byte 1: high surrogate \uD800 is followed by \u0041, not a low surrogate"#))
        XCTAssertTrue(decodeError(String.self, #""\udc00""#).hasSuffix(
            #"invalid JSON at byte 1: low surrogate \uDC00 without a high surrogate before it"#))
    }

    func testInvalidUTF8IsRefusedWithTheByteWhereItStarts() {
        let cases: [([UInt8], String)] = [
            ([0x22, 0x61, 0x80, 0x22], "at byte 2: the sequence that starts with byte 0x80"), // a lone continuation byte
            ([0x22, 0xC0, 0xAF, 0x22], "at byte 1: the sequence that starts with byte 0xC0"), // overlong, 2 bytes
            ([0x22, 0xE0, 0x80, 0xAF, 0x22], "at byte 1: the sequence that starts with byte 0xE0"), // overlong, 3 bytes
            ([0x22, 0xED, 0xA0, 0x80, 0x22], "at byte 1: the sequence that starts with byte 0xED"), // a UTF-16 surrogate
            ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], "at byte 1: the sequence that starts with byte 0xF4"), // above U+10FFFF
            ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], "at byte 1: the sequence that starts with byte 0xF5"), // no such lead byte
            ([0x22, 0xE2, 0x82, 0x22], "at byte 1: the sequence that starts with byte 0xE2"), // truncated by the quote
            ([0x22, 0x61, 0xF0, 0x9F, 0x98], "at byte 2: the sequence that starts with byte 0xF0"), // truncated by the end
        ]
        for (bytes, place) in cases {
            XCTAssertTrue(decodeError(String.self, bytes: bytes).hasSuffix("invalid UTF-8 in a string \(place) is not well-formed UTF-8"),
                          "\(bytes) -> \(place)")
        }
        // Every well-formed sequence length passes: 2, 3 and 4 bytes, at the edges of table 3-7.
        XCTAssertEqual(try JSONCoding.decode(String.self, from: [0x22, 0xC2, 0x80, 0xE0, 0xA0, 0x80, 0xED, 0x9F, 0xBF, 0xF4, 0x8F, 0xBF, 0xBF, 0x22],
                                             what: "the data", status: .invalidArgument),
                       "\u{80}\u{800}\u{D7FF}\u{10FFFF}")
    }

    func testControlCharactersInsideStringsMustBeEscaped() {
        XCTAssertTrue(decodeError(String.self, "\"a\tb\"").hasSuffix(
            "invalid JSON at byte 2: control character 0x09 must be escaped inside a string"))
    }

    // MARK: Strict syntax

    func testEverythingRFC8259DoesNotAllowIsRefusedWithByteAndReason() {
        let cases: [(String, String)] = [
            ("   ", "invalid JSON at byte 3: expected a value, found the end of the input"),
            (#"{"a":1,}"#, "invalid JSON at byte 7: trailing comma before '}'"),
            ("[1,]", "invalid JSON at byte 3: trailing comma before ']'"),
            ("[1 2]", "invalid JSON at byte 3: expected ',' or ']' after an array item, found '2'"),
            (#"{"a" 1}"#, "invalid JSON at byte 5: expected ':' after a member name, found '1'"),
            (#"{"a":1 "b":2}"#, "invalid JSON at byte 7: expected ',' or '}' after a member, found '\"'"),
            ("{a:1}", "invalid JSON at byte 1: expected a string (a member name), found 'a'"),
            ("{'a':1}", "invalid JSON at byte 1: expected a string (a member name), found '''"),
            ("[01]", "invalid JSON at byte 1: a number must not start with 0 followed by more digits"),
            ("[-]", "invalid JSON at byte 2: expected a digit, found ']'"),
            ("[1.]", "invalid JSON at byte 3: expected a digit after the decimal point, found ']'"),
            ("[.5]", "invalid JSON at byte 1: expected a value, found '.'"),
            ("[1e]", "invalid JSON at byte 3: expected a digit in the exponent, found ']'"),
            ("[+1]", "invalid JSON at byte 1: expected a value, found '+'"),
            ("[NaN]", "invalid JSON at byte 1: expected a value, found 'N'"),
            ("[nul]", "invalid JSON at byte 4: expected 'l' of null, found ']'"),
            ("[True]", "invalid JSON at byte 1: expected a value, found 'T'"),
            ("[1] x", "invalid JSON at byte 4: expected the end of the input after the value, found 'x'"),
            ("[1]\u{0}", "invalid JSON at byte 3: expected the end of the input after the value, found byte 0x00"),
            ("\u{FEFF}[1]", "invalid JSON at byte 0: expected a value, found byte 0xEF"),
            ("[1]\u{A0}", "invalid JSON at byte 3: expected the end of the input after the value, found byte 0xC2"),
            (#"["a\x"]"#, #"invalid JSON at byte 4: expected one of " \ / b f n r t u after '\', found 'x'"#),
            (#"["\u12G4"]"#, #"invalid JSON at byte 6: expected a hex digit in a \u escape, found 'G'"#),
            (#"["abc"#, #"invalid JSON at byte 5: expected '"' to end the string that starts at byte 1, found the end of the input"#),
            ("[1, /* no */ 2]", "invalid JSON at byte 4: expected a value, found '/'"),
        ]
        for (json, expected) in cases {
            let message = decodeError(WidgetValue.self, json)
            XCTAssertEqual(message, "cannot read the data as WidgetValue: at the top level: \(expected)", json)
        }
    }

    func testWhitespaceIsSpaceTabLineFeedAndCarriageReturnOnly() throws {
        XCTAssertEqual(try decode([Int].self, " \t\r\n[ 1 ,\n2 ]\r\n "), [1, 2])
        XCTAssertTrue(decodeError([Int].self, "[1,\u{B}2]").contains("found byte 0x0B"))
        XCTAssertTrue(decodeError([Int].self, "[1,\u{C}2]").contains("found byte 0x0C"))
    }

    func testARepeatedMemberNameKeepsItsLastValue() throws {
        XCTAssertEqual(try decode([String: Int].self, #"{"a":1,"b":2,"a":3}"#), ["a": 3, "b": 2])
    }

    func testEmptyBytesReadAsAnEmptyObjectWhereTheABISaysSo() throws {
        XCTAssertEqual(try JSONCoding.decode([String: Int].self, from: [], what: "data", status: .invalidArgument), [:])
        XCTAssertThrowsError(try JSONCoding.decode([String: Int].self, from: [], what: "state", status: .unreadableState,
                                                   emptyIsObject: false)) { error in
            XCTAssertEqual((error as? PluginError)?.status, .unreadableState)
            XCTAssertEqual((error as? PluginError)?.message, "cannot read state as Dictionary<String, Int>: at the top level: "
                           + "invalid JSON at byte 0: expected a value, found the end of the input")
        }
    }

    // MARK: Reading numbers

    func testIntegersReadExactlyAtTheEdgesOfTheirTypes() throws {
        XCTAssertEqual(try decode([Int64].self, "[-9223372036854775808, 9223372036854775807]"), [.min, .max])
        XCTAssertEqual(try decode([UInt64].self, "[18446744073709551615, 0]"), [.max, 0])
        XCTAssertEqual(try decode([Int8].self, "[-128, 127]"), [-128, 127])
        XCTAssertEqual(try decode([Int].self, "[9007199254740993]"), [9_007_199_254_740_993], "not rounded through a Double")
    }

    func testAnIntegerValuedNumberReadsAsAnInteger() throws {
        XCTAssertEqual(try decode([Int].self, "[1.0, 1e2, 2.5E+1, -0, 0.1e1]"), [1, 100, 25, 0, 1])
        XCTAssertTrue(decodeError(WidgetValue.self, "1e400").hasSuffix("at the top level: expected an object, found the number 1e400"),
                      "1e400 fits no number type, so the last of WidgetValue's tries says what it found")
        XCTAssertEqual(try decode(WidgetValue.self, "[1.0, 1.5, 20]"), [.int(1), .double(1.5), .int(20)])
    }

    func testNumbersThatDoNotFitSayWhichTypeAndRange() {
        XCTAssertEqual(decodeError([String: UInt8].self, #"{"a": 300}"#),
                       "cannot read the data as Dictionary<String, UInt8>: at a: the number 300 does not fit UInt8 (0...255, integers only)")
        XCTAssertTrue(decodeError([Int].self, "[1.5]").hasSuffix("at [0]: the number 1.5 does not fit Int "
                                                                 + "(-9223372036854775808...9223372036854775807, integers only)"))
        XCTAssertTrue(decodeError([Int64].self, "[9223372036854775808]").contains("does not fit Int64"))
        XCTAssertTrue(decodeError([Double].self, "[1e400]").hasSuffix("at [0]: the number 1e400 does not fit Double"))
        XCTAssertTrue(decodeError([Float].self, "[1e39]").hasSuffix("at [0]: the number 1e39 does not fit Float"))
    }

    func testDoublesReadAsTheNearestDouble() throws {
        XCTAssertEqual(try decode([Double].self, "[0.1, 1e-7, -0, 5e-324, 1.7976931348623157e308, 2.2250738585072011e-308]"),
                       [0.1, 1e-7, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                        Double(bitPattern: 0x000F_FFFF_FFFF_FFFF)])
        XCTAssertEqual(try decode(Double.self, "-0").sign, .minus)
    }

    // MARK: Decoding errors

    func testATypeMismatchSaysWhereWhatWasExpectedAndWhatWasFound() {
        struct Inner: Decodable { var b: [Int] }
        struct Outer: Decodable { var a: Inner }
        XCTAssertEqual(decodeError(Outer.self, #"{"a": {"b": [1, "two"]}}"#),
                       #"cannot read the data as Outer: at a.b[1]: expected an integer (Int), found the string "two""#)
        XCTAssertEqual(decodeError(Outer.self, #"{"a": []}"#),
                       "cannot read the data as Outer: at a: expected an object, found an array")
        XCTAssertEqual(decodeError(Outer.self, #"{"a": {"b": {}}}"#),
                       "cannot read the data as Outer: at a.b: expected an array, found an object")
        XCTAssertEqual(decodeError([Bool].self, "[1]"), "cannot read the data as Array<Bool>: at [0]: expected true or false, found the number 1")
        XCTAssertEqual(decodeError([String].self, "[false]"), "cannot read the data as Array<String>: at [0]: expected a string, found false")
    }

    func testAMissingKeyAndANullAreNamed() {
        struct Needs: Decodable { var value: Int }
        XCTAssertEqual(decodeError(Needs.self, "{}"), #"cannot read the data as Needs: at the top level: missing key "value""#)
        XCTAssertEqual(decodeError(Needs.self, #"{"value": null}"#),
                       "cannot read the data as Needs: at value: expected an integer (Int), found null")
    }

    func testReadingPastTheEndOfAnArraySaysHowManyItemsThereAre() {
        struct Pair: Decodable {
            var first: Int, second: Int
            init(from decoder: any Decoder) throws {
                var items = try decoder.unkeyedContainer()
                first = try items.decode(Int.self)
                second = try items.decode(Int.self)
            }
        }
        XCTAssertEqual(decodeError(Pair.self, "[1]"), "cannot read the data as Pair: at [1]: the array has only 1 items")
    }

    func testAFailedReadLeavesAnArrayWhereItWas() throws {
        struct Mixed: Decodable {
            var items: [String] = []
            init(from decoder: any Decoder) throws {
                var array = try decoder.unkeyedContainer()
                while !array.isAtEnd {
                    if try array.decodeNil() {
                        items.append("null")
                    } else if let number = try? array.decode(Int.self) {
                        items.append("int \(number)")
                    } else {
                        items.append("string " + (try array.decode(String.self)))
                    }
                }
            }
        }
        XCTAssertEqual(try decode(Mixed.self, #"[1, "a", null, 2]"#).items, ["int 1", "string a", "null", "int 2"])
    }

    func testBadBase64InASavedWidgetStateIsNamed() {
        let json = #"{"state": {}, "buffer_paths": [["a"], ["b"]], "buffers": ["AAEC", "AA=A"]}"#
        XCTAssertEqual(decodeError(WidgetState.self, json),
                       "cannot read the data as WidgetState: at buffers[1]: not base64: '=' at offset 2 is not a base64 character here")
    }

    func testAFoundationWrittenSavedStateReadsBack() throws {
        struct Saved: Codable { var state: [String: Int]; var buffer_paths: [[String]]; var buffers: [Data] }
        let written = try foundationText(Saved(state: ["n": 1], buffer_paths: [["img"]], buffers: [Data([1, 2, 3, 4, 5])]))
        let state = try decode(WidgetState.self, written)
        XCTAssertEqual(state, ["n": 1, "img": .bytes([1, 2, 3, 4, 5])])
        XCTAssertEqual(try text(state), written, "the same bytes: a reload between the two coders round-trips")
    }
}

/// A base class and a subclass that encodes it through `superEncoder()`.
private class Animal: Codable {
    var name: String
    init(name: String) { self.name = name }
}

private final class Dog: Animal {
    var sound: String
    private enum Keys: String, CodingKey { case sound }

    init(name: String, sound: String) {
        self.sound = sound
        super.init(name: name)
    }

    required init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        sound = try container.decode(String.self, forKey: .sound)
        try super.init(from: container.superDecoder())
    }

    override func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(sound, forKey: .sound)
        try super.encode(to: container.superEncoder())
    }
}
