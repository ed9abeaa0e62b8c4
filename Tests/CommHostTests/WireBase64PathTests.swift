import CommBase64
import CommPluginAPI
import Foundation
import Glibc
import XCTest
@testable import CommHost

/// Every base64 path (the scalar code and each vector loop this CPU runs) over the same cases:
/// the same text, the same bytes, and the same error, offset and reason, whatever path ran.
final class WireBase64PathTests: XCTestCase {
    private let paths = Base64.Path.supported

    private func encode(_ bytes: [UInt8], _ path: Base64.Path) -> [UInt8] {
        var out: [UInt8] = []
        bytes.withUnsafeBytes { Base64.encode($0, into: &out, path: path) }
        return out
    }

    private func decode(_ text: [UInt8], _ path: Base64.Path) -> Result<[UInt8], Base64.DecodingError> {
        var out: [UInt8] = []
        let result: Result<Void, Base64.DecodingError> = text.withUnsafeBytes { raw in
            Result { () throws(Base64.DecodingError) in try Base64.decode(raw, appendingTo: &out, path: path) }
        }
        return result.map { out }
    }

    /// The offset of the error `result` holds; nil when it holds bytes.
    private func offset<T>(_ result: Result<T, Base64.DecodingError>) -> Int? {
        if case .failure(let error) = result { return error.offset }
        return nil
    }

    /// Text of `count` alphabet characters (no padding), every character of the alphabet in it.
    private func cleanText(_ count: Int) -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        return (0..<count).map { alphabet[($0 * 7 + $0 / 64) % 64] }
    }

    func testEveryVectorPathTheCPUReportsIsSupported() throws {
        XCTAssertEqual(paths.first, .scalar)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            throw XCTSkip("no CPU flags in /proc/cpuinfo")
        }
        let words = Set(flags.split(separator: " ").map(String.init))
        XCTAssertEqual(paths.contains(.ssse3), words.contains("ssse3"), "\(paths)")
        XCTAssertEqual(paths.contains(.avx2), words.contains("avx2"), "\(paths)")
        XCTAssertEqual(Base64.Path.fastest, paths.last)
    }

    func testEveryPathRoundTripsAll256ByteValuesAtEveryAlignment() throws {
        let all = (0...255).map { UInt8($0) }
        for path in paths {
            for shift in 0..<3 {
                // Four runs of every byte value, starting `shift` bytes into a 3-byte group, so each
                // value meets each field position and lands in the vector loops' blocks.
                let bytes = Array(repeating: UInt8(0x41), count: shift) + all + all.reversed() + all + all.reversed()
                let text = encode(bytes, path)
                XCTAssertEqual(String(decoding: text, as: UTF8.self), Data(bytes).base64EncodedString(), "\(path) shift \(shift)")
                XCTAssertEqual(try decode(text, path).get(), bytes, "\(path) shift \(shift)")
            }
        }
    }

    func testEveryPathAgreesWithFoundationForEveryLengthTo200AndSomeLonger() throws {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...200) + [255, 256, 257, 1000, 4097, 65_537] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = Data(bytes).base64EncodedString()
            for path in paths {
                let text = encode(bytes, path)
                XCTAssertEqual(String(decoding: text, as: UTF8.self), expected, "\(path) length \(length)")
                XCTAssertEqual(try decode(text, path).get(), bytes, "\(path) length \(length)")
            }
        }
    }

    func testEveryPathGivesTheScalarErrorForBadPaddingAfterALongCleanRun() {
        for prefix in [0, 64, 100, 128] {
            let clean = cleanText(prefix)
            for tail in ["Zg", "Zm8", "Zm9vY", "Zg==Zg==", "Z===", "====", "=AAA", "A=AA", "QR==", "QUF=", "QQ=", "Q==="] {
                let text = clean + Array(tail.utf8)
                let scalar = decode(text, .scalar)
                guard case .failure(let expected) = scalar else {
                    XCTFail("scalar accepted \(tail) after \(prefix) characters")
                    continue
                }
                XCTAssertGreaterThanOrEqual(expected.offset, prefix, tail)
                for path in paths {
                    XCTAssertEqual(decode(text, path), scalar, "\(path): \(tail) after \(prefix) characters")
                }
            }
        }
        XCTAssertEqual(decode(cleanText(64) + Array("Zg==Zg==".utf8), .fastest),
                       .failure(Base64.DecodingError(offset: 66, reason: "padding '=' at offset 66 before the end of the text")))
        XCTAssertEqual(offset(decode(cleanText(128) + Array("QR==".utf8), .fastest)), 129)
    }

    func testEveryPathReportsAnyBadByteAtEveryPositionOfItsBlocksWhereTheScalarCodeDoes() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let badBytes = (0...255).map { UInt8($0) }.filter { !alphabet.contains($0) }
        XCTAssertEqual(badBytes.count, 192)
        let text = cleanText(132) + Array("QQ==".utf8)
        for position in 0..<132 {
            for bad in badBytes {
                var broken = text
                broken[position] = bad
                let expected = decode(broken, .scalar)
                XCTAssertEqual(offset(expected), position, "byte \(bad) at \(position)")
                for path in paths.dropFirst() {
                    XCTAssertEqual(decode(broken, path), expected, "\(path): byte \(bad) at \(position)")
                }
            }
            // Two bad characters in one block: the first is the one reported.
            var twice = text
            twice[position] = UInt8(ascii: "-")
            twice[min(position + 5, 131)] = UInt8(ascii: " ")
            for path in paths {
                XCTAssertEqual(offset(decode(twice, path)), position, "\(path) at \(position)")
            }
        }
    }

    func testEveryPathNamesWhitespaceInsideAVectorBlock() {
        for path in paths {
            for (byte, shown) in [(UInt8(ascii: " "), "byte 0x20"), (0x0A, "byte 0x0A"), (0x09, "byte 0x09"), (0x0D, "byte 0x0D")] {
                var text = cleanText(128)
                text[77] = byte
                XCTAssertEqual(decode(text, path),
                               .failure(Base64.DecodingError(offset: 77, reason: "invalid character \(shown) at offset 77")), "\(path)")
            }
        }
    }

    func testEveryPathLeavesTheArrayAsItWasWhenItRefusesTheText() {
        for path in paths {
            var out: [UInt8] = [1, 2, 3]
            var text = cleanText(200)
            text[150] = UInt8(ascii: "*")
            let result: Result<Void, Base64.DecodingError> = text.withUnsafeBytes { raw in
                Result { () throws(Base64.DecodingError) in try Base64.decode(raw, appendingTo: &out, path: path) }
            }
            XCTAssertEqual(offset(result), 150, "\(path)")
            XCTAssertEqual(out, [1, 2, 3], "\(path)")
        }
    }

    /// The vector loops read only their input and write only the room the header promises: input
    /// ends at a page that cannot be read, output is followed by bytes that must stay as they were.
    func testVectorLoopsStayInsideTheirInputAndOutput() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let map = mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), map != MAP_FAILED else {
            throw XCTSkip("mmap failed")
        }
        defer { munmap(map, 2 * page) }
        XCTAssertEqual(mprotect(map + page, page, PROT_NONE), 0)
        let pageEnd = (map + page).assumingMemoryBound(to: UInt8.self)
        let canary: UInt8 = 0xA5
        for path in paths.dropFirst() {
            for length in 0...300 {
                let src = pageEnd - length
                for i in 0..<length { src[i] = UInt8(truncatingIfNeeded: i &* 37) }
                var encoded = [UInt8](repeating: canary, count: length / 3 * 4 + 64)
                let took = encoded.withUnsafeMutableBufferPointer { commhost_base64_encode_prefix(path.rawValue, src, length, $0.baseAddress!) }
                XCTAssertEqual(took % 3, 0)
                XCTAssertLessThanOrEqual(took, length)
                XCTAssert(encoded[(took / 3 * 4)...].allSatisfy { $0 == canary }, "\(path) encode \(length) wrote past its text")

                let chars = length / 4 * 4
                let text = pageEnd - chars
                let clean = cleanText(chars)
                for i in 0..<chars { text[i] = clean[i] }
                var decoded = [UInt8](repeating: canary, count: chars / 4 * 3 + 64)
                let taken = decoded.withUnsafeMutableBufferPointer { commhost_base64_decode_prefix(path.rawValue, text, chars, $0.baseAddress!) }
                XCTAssertEqual(taken % 4, 0)
                XCTAssertLessThanOrEqual(taken, chars)
                XCTAssert(decoded[(chars / 4 * 3)...].allSatisfy { $0 == canary }, "\(path) decode \(chars) wrote past its room")
                if chars >= 64 { XCTAssertGreaterThan(taken, 0, "\(path) took nothing of \(chars) clean characters") }
            }
        }
    }

    func testABufferListHandsThePluginItsStorageWithoutACopy() throws {
        var list = BufferList()
        for text in ["AAEC", "", "/w==", "aGk="] {
            try list.appendDecoding(base64: Array(text.utf8))
        }
        XCTAssertEqual(list, [[0, 1, 2], [], [0xFF], Array("hi".utf8)])
        XCTAssertThrowsError(try list.appendDecoding(base64: Array("AA*A".utf8)))
        XCTAssertEqual(list.count, 4, "a refused text adds no buffer")
        let storageBase = list.withStorage { storage, _ in storage.baseAddress }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        MessageView.with(data: empty, metadata: empty, buffers: list) { message in
            XCTAssertEqual(message.pointee.buffer_count, 4)
            let slices = UnsafeBufferPointer(start: message.pointee.buffers, count: 4)
            XCTAssertEqual(slices.map(\.len), [3, 0, 1, 2])
            XCTAssert(slices.allSatisfy { $0.ptr != nil }, "no NULL pointer, not even for the empty buffer")
            XCTAssertEqual(UnsafeRawPointer(slices[0].ptr), storageBase, "the first buffer is the decoded storage itself")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: slices[3].ptr, count: 2)), Array("hi".utf8))
        }
    }
}
