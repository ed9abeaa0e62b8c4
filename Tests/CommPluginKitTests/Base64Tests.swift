@testable import CommPluginKit
import Foundation
import XCTest

/// The kit's base64 (saved widget state's buffers): what Foundation writes
/// and reads, strictly.
final class Base64Tests: XCTestCase {
    func testEncodeAgreesWithFoundationAndDecodeReadsItBackForEveryLengthTo100() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0...100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let text = Base64.encode(bytes)
            XCTAssertEqual(text, Data(bytes).base64EncodedString(), "length \(length)")
            XCTAssertEqual(try Base64.decode(text).get(), bytes, "length \(length)")
        }
    }

    func testEveryByteValueRoundTrips() throws {
        let bytes = Array(UInt8.min...UInt8.max)
        XCTAssertEqual(try Base64.decode(Base64.encode(bytes)).get(), bytes)
    }

    func testTextThatIsNotStrictPaddedBase64IsRefusedWithTheReason() {
        let cases: [(String, String)] = [
            ("AAE", "its length 3 is not a multiple of 4"),
            ("AA E", "byte 32 at offset 2 is not a base64 character here"),
            ("AA\nE", "byte 10 at offset 2 is not a base64 character here"),
            ("AA-_", "'-' at offset 2 is not a base64 character here"),
            ("A===", "'=' at offset 1 is not a base64 character here"),
            ("AA=A", "'=' at offset 2 is not a base64 character here"),
            ("AA==AAAA", "'=' at offset 2 is not a base64 character here"),
            ("AB==", "the last group has bits set that its padding drops"),
            ("AAF=", "the last group has bits set that its padding drops"),
        ]
        for (text, expected) in cases {
            switch Base64.decode(text) {
            case .success(let bytes): XCTFail("\(text) decoded to \(bytes)")
            case .failure(let problem): XCTAssertEqual(problem.text, expected, text)
            }
        }
    }
}
