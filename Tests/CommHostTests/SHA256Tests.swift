import XCTest
import CommHost

/// SHA-256 against the FIPS 180-4 / NIST example vectors.
final class SHA256Tests: XCTestCase {
    private func hex(_ text: String) -> String {
        SHA256.hex(SHA256.hash(Array(text.utf8)))
    }

    func testEmptyInputMatchesNISTVector() {
        XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testAbcMatchesNISTVector() {
        XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func test448BitMessageMatchesNISTVector() {
        XCTAssertEqual(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func test896BitMessageMatchesNISTVector() {
        XCTAssertEqual(hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    func testOneMillionLetterAMatchesNISTVector() {
        let input = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(SHA256.hex(SHA256.hash(input)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testStreamingInPiecesOfOddSizesGivesTheOneShotDigest() {
        let input = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let expected = SHA256.hash(input)
        for pieceSizes in [[1], [3], [7, 1], [63], [64], [65], [55, 1, 8], [127, 129], [4999]] {
            var hasher = SHA256Hasher()
            var offset = 0
            var turn = 0
            while offset < input.count {
                let size = min(pieceSizes[turn % pieceSizes.count], input.count - offset)
                input[offset..<offset + size].withUnsafeBytes { hasher.update($0) }
                offset += size
                turn += 1
            }
            XCTAssertEqual(hasher.finalize(), expected, "pieces of \(pieceSizes)")
        }
    }

    func testPaddingBoundaryLengthsStreamLikeOneShot() {
        // 55, 56 and 64 bytes are where the length field does or does not fit in the last block.
        for length in [55, 56, 57, 63, 64, 65, 119, 120] {
            let input = [UInt8](repeating: 0x61, count: length)
            var hasher = SHA256Hasher()
            input.withUnsafeBytes { raw in
                hasher.update(UnsafeRawBufferPointer(rebasing: raw[0..<length / 2]))
                hasher.update(UnsafeRawBufferPointer(rebasing: raw[length / 2..<length]))
            }
            XCTAssertEqual(hasher.finalize(), SHA256.hash(input), "length \(length)")
        }
    }

    func testHexIsLowercaseTwoDigitsPerByte() {
        XCTAssertEqual(SHA256.hex([0x00, 0x0f, 0xa0, 0xff]), "000fa0ff")
    }
}
