import Foundation
import XCTest
@testable import CommHost

/// A frame's `buffers` as the parser reads them: a plain base64 string is checked and decoded in
/// one pass, and anything else gets the same result and the same error as the JSON scanner and the
/// base64 decoder give it on their own.
final class WireFrameBuffersTests: XCTestCase {
    private let parser = FrameParser(dialect: .jupyter, limits: WireLimits())

    private func frame(buffers: String) -> [UInt8] {
        Array(#"{"msg_type":"comm_msg","content":{"comm_id":"x","data":{}},"buffers":\#(buffers)}"#.utf8)
    }

    private func result(_ bytes: [UInt8]) -> Result<InboundFrame, WireError> {
        Result { () throws(WireError) in try parser.parse(bytes) }
    }

    func testLargeBuffersOfEveryLengthModThreeComeBackByteForByte() throws {
        let buffers = [1 << 20, (1 << 20) + 1, 3 * 1000 + 2, 0].map { count in
            (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 ^ $0 >> 9) }
        }
        let texts = buffers.map { "\"" + Data($0).base64EncodedString() + "\"" }
        let parsed = try parser.parse(frame(buffers: "[" + texts.joined(separator: " , ") + "]"))
        XCTAssertEqual(parsed.buffers.count, 4)
        XCTAssertEqual(parsed.buffers.arrays, buffers)
    }

    func testEscapedBase64IsDecodedAfterTheEscapes() throws {
        let parsed = try parser.parse(frame(buffers: #"["\/w==","aGk\u003d","AAEC"]"#))
        XCTAssertEqual(parsed.buffers, [[0xFF], Array("hi".utf8), [0, 1, 2]])
    }

    func testAStringThatIsNotJSONIsAJSONErrorNotABase64One() {
        let cases: [[UInt8]] = [
            frame(buffers: #"["AA"#) + [0x01] + Array(#"A"]"#.utf8),   // a raw control character
            frame(buffers: #"["AA"#) + [0xC3] + Array(#"A"]"#.utf8),   // a broken UTF-8 sequence
            frame(buffers: #"["AA\qA"]"#),                               // an escape JSON does not have
            Array(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"buffers":["AAAA"#.utf8), // no closing quote
        ]
        for bytes in cases {
            guard case .failure(let error) = result(bytes) else {
                XCTFail("accepted \(String(decoding: bytes, as: UTF8.self))")
                continue
            }
            XCTAssertNotEqual(error.name, .invalidBase64, "\(error)")
            let json = Result { () throws(WireError) in try JSONValidator.validateObject(bytes, maxDepth: 256) }
            guard case .failure(let jsonError) = json else {
                XCTFail("the validator accepted \(String(decoding: bytes, as: UTF8.self))")
                continue
            }
            XCTAssertEqual(error, jsonError, "the parser reports what the JSON validator reports")
        }
    }

    func testABadBufferAfterAGoodOneNamesItsIndexOffsetAndReason() {
        let good = Data(repeating: 7, count: 3000).base64EncodedString()
        var bad = Array(Data(repeating: 9, count: 300).base64EncodedString().utf8)
        bad[257] = UInt8(ascii: "-")
        let bytes = frame(buffers: "[\"\(good)\",\"\(String(decoding: bad, as: UTF8.self))\"]")
        XCTAssertEqual(offsetError(bytes), WireError(.invalidBase64, "buffers[1]: invalid character '-' at offset 257"))
        XCTAssertEqual(offsetError(frame(buffers: "[\"\(good)\",\"\(good)=\"]"))?.name, .invalidBase64)
        var spaced = Array(good.utf8)
        spaced[2000] = UInt8(ascii: " ")
        XCTAssertEqual(offsetError(frame(buffers: "[\"\(String(decoding: spaced, as: UTF8.self))\"]")),
                       WireError(.invalidBase64, "buffers[0]: invalid character byte 0x20 at offset 2000"))
    }

    func testABase64ErrorComesAfterAnEarlierEnvelopeProblem() {
        let bytes = Array(#"{"msg_type":7,"buffers":["AAAA","!!!!"],"content":{"comm_id":"x"}}"#.utf8)
        XCTAssertEqual(offsetError(bytes)?.name, .invalidFrame)
    }

    func testTheNextLargeFrameDecodesIntoTheStorageTheLastOneLeft() throws {
        var raw = [UInt8](repeating: 0x5A, count: SpareBytes.minimumCapacity + 3)
        for i in stride(from: 0, to: raw.count, by: 4093) { raw[i] = UInt8(truncatingIfNeeded: i / 4093) }
        let bytes = frame(buffers: "[\"" + Data(raw).base64EncodedString() + "\"]")
        func decodedAt() throws -> UnsafeRawPointer? {
            let parsed = try parser.parse(bytes)
            XCTAssertEqual(parsed.buffers.count, 1)
            return parsed.buffers.withStorage { storage, ends in
                XCTAssertEqual(ends, [raw.count])
                XCTAssertEqual(memcmp(storage.baseAddress!, raw, raw.count), 0, "the buffer decoded into reused storage is whole")
                return storage.baseAddress
            }
        }
        let first = try decodedAt()
        let second = try decodedAt()
        XCTAssertNotNil(first)
        XCTAssertEqual(first, second, "the second frame's buffer went where the first one's was")
        // A small buffer leaves the kept storage alone.
        XCTAssertEqual(try parser.parse(frame(buffers: #"["AAEC"]"#)).buffers, [[0, 1, 2]])
        XCTAssertEqual(try decodedAt(), first)
    }

    private func offsetError(_ bytes: [UInt8]) -> WireError? {
        if case .failure(let error) = result(bytes) { return error }
        return nil
    }
}
