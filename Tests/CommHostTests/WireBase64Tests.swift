import Foundation
import XCTest
@testable import CommHost

/// Strict base64 (RFC 4648 section 4, padded), checked against Foundation's encoder.
final class WireBase64Tests: XCTestCase {
    private func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        Base64.encode(bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func decodeError(_ text: String) -> Base64.DecodingError? {
        do {
            _ = try Base64.decode(Array(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    func testRFC4648TestVectorsEncode() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==",
                       "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            XCTAssertEqual(encode(Array(plain.utf8)), encoded)
        }
    }

    func testRFC4648TestVectorsDecode() throws {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==",
                       "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            XCTAssertEqual(try Base64.decode(Array(encoded.utf8)), Array(plain.utf8))
        }
    }

    func testEncodeAndDecodeAgreeWithFoundationForEveryLengthAndByte() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let ours = encode(bytes)
            XCTAssertEqual(ours, Data(bytes).base64EncodedString(), "length \(length)")
            XCTAssertEqual(try Base64.decode(Array(ours.utf8)), bytes, "length \(length)")
        }
        let all = (0...255).map { UInt8($0) }
        XCTAssertEqual(try Base64.decode(Array(encode(all).utf8)), all)
    }

    func testEncodeAppendsAfterExistingBytes() {
        var out = Array("x:".utf8)
        Base64.encode(Array("hi".utf8), into: &out)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), "x:aGk=")
        XCTAssertEqual(Base64.encodedCount(of: 2), 4)
        XCTAssertEqual(Base64.encodedCount(of: 3), 4)
        XCTAssertEqual(Base64.encodedCount(of: 4), 8)
    }

    func testCharactersOutsideTheAlphabetAreRejectedWithTheirOffset() {
        XCTAssertEqual(decodeError("AA!A"), Base64.DecodingError(offset: 2, reason: "invalid character '!' at offset 2"))
        XCTAssertEqual(decodeError("AAAAAA-_")?.offset, 6, "URL-safe alphabet")
        XCTAssertEqual(decodeError("AAAA AAA")?.offset, 4, "space")
        XCTAssertEqual(decodeError("AAAA\nAAA")?.reason, "invalid character byte 0x0A at offset 4")
        XCTAssertEqual(decodeError("Zg\u{e9}")?.offset, 2, "non-ASCII")
    }

    func testMissingPaddingIsRejected() {
        XCTAssertEqual(decodeError("Zg"), Base64.DecodingError(offset: 2, reason: "length 2 is not a multiple of 4; base64 must be padded with '='"))
        XCTAssertNotNil(decodeError("Zm8"))
        XCTAssertNotNil(decodeError("Zm9vY"))
    }

    func testMisplacedPaddingIsRejected() {
        XCTAssertEqual(decodeError("Zg==Zg=="), Base64.DecodingError(offset: 2, reason: "padding '=' at offset 2 before the end of the text"))
        XCTAssertNotNil(decodeError("Z==="))
        XCTAssertNotNil(decodeError("===="))
        XCTAssertNotNil(decodeError("=AAA"))
        XCTAssertNotNil(decodeError("A=AA"))
    }

    func testNonZeroBitsAfterTheLastByteAreRejected() {
        XCTAssertNil(decodeError("QQ=="))
        XCTAssertEqual(decodeError("QR==")?.offset, 1)
        XCTAssertNil(decodeError("QUE="))
        XCTAssertEqual(decodeError("QUF=")?.offset, 2)
    }
}
