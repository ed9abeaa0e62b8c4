import Foundation
import XCTest
@testable import CommHost

/// Splitting a real pipe's bytes into frames.
final class WireFrameReaderTests: XCTestCase {
    /// What the reader delivered, in order.
    private enum Seen: Equatable {
        case line(String, Int)
        case tooLong(Int, Int)
    }

    /// Writes `chunks` into a pipe (each its own write, from another thread), closes it, and
    /// reads everything with a `FrameReader`.
    private func read(_ chunks: [[UInt8]], maxFrameBytes: Int = 1 << 20, readChunkBytes: Int = 64 << 10,
                      file: StaticString = #filePath, line: UInt = #line) -> [Seen] {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0, file: file, line: line)
        let writeEnd = fds[1]
        let writer = Thread {
            for chunk in chunks {
                chunk.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let n = write(writeEnd, raw.baseAddress! + offset, raw.count - offset)
                        if n < 0 && errno == EINTR { continue }
                        precondition(n > 0, "write to the test pipe failed")
                        offset += n
                    }
                }
            }
            close(writeEnd)
        }
        writer.start()
        defer { close(fds[0]) }
        let reader = FrameReader(fileDescriptor: fds[0], maxFrameBytes: maxFrameBytes, readChunkBytes: readChunkBytes)
        var seen: [Seen] = []
        XCTAssertNoThrow(try reader.run { event in
            switch event {
            case let .line(bytes, number): seen.append(.line(String(decoding: bytes, as: UTF8.self), number))
            case let .tooLong(number, count): seen.append(.tooLong(number, count))
            }
        }, file: file, line: line)
        return seen
    }

    private func read(_ text: String, maxFrameBytes: Int = 1 << 20) -> [Seen] {
        read([Array(text.utf8)], maxFrameBytes: maxFrameBytes)
    }

    func testLinesAreDeliveredWithTheirNumbers() {
        XCTAssertEqual(read("{\"a\":1}\n{\"b\":2}\n"), [.line("{\"a\":1}", 1), .line("{\"b\":2}", 2)])
    }

    func testACarriageReturnBeforeTheNewlineIsDropped() {
        XCTAssertEqual(read("one\r\ntwo\r\n"), [.line("one", 1), .line("two", 2)])
        XCTAssertEqual(read("a\rb\n"), [.line("a\rb", 1)], "a \\r elsewhere stays")
    }

    func testAFinalLineWithoutNewlineIsDelivered() {
        XCTAssertEqual(read("first\nlast"), [.line("first", 1), .line("last", 2)])
        XCTAssertEqual(read("last\r"), [.line("last", 1)])
    }

    func testEmptyAndWhitespaceLinesAreSkippedButCounted() {
        XCTAssertEqual(read("\n \t\n\r\nx\n\n"), [.line("x", 4)])
        XCTAssertEqual(read(""), [])
    }

    func testLinesSplitAcrossManyWritesAreReassembled() {
        let text = Array("{\"k\":\"value\"}\n{\"n\":2}\nend".utf8)
        XCTAssertEqual(read(text.map { [$0] }, readChunkBytes: 3), [.line("{\"k\":\"value\"}", 1), .line("{\"n\":2}", 2), .line("end", 3)])
    }

    func testATooLongLineIsSkippedAndTheNextLineDelivered() {
        let long = String(repeating: "x", count: 100)
        XCTAssertEqual(read("ok\n\(long)\nnext\n", maxFrameBytes: 10),
                       [.line("ok", 1), .tooLong(2, 100), .line("next", 3)])
    }

    func testATooLongLineSpanningManyReadsIsSkippedWithoutHoldingIt() {
        // 1 MiB line, 4 KiB limit, fed in 1 KiB writes: the reader never needs more than the
        // limit plus one chunk, and reports the whole length.
        let limit = 4096
        var chunks: [[UInt8]] = [Array("before\n".utf8)]
        chunks += Array(repeating: [UInt8](repeating: 0x61, count: 1024), count: 1024)
        chunks.append(Array("\r\nafter\n".utf8))
        XCTAssertEqual(read(chunks, maxFrameBytes: limit, readChunkBytes: 1024),
                       [.line("before", 1), .tooLong(2, 1 << 20 + 1), .line("after", 3)])
    }

    func testALineExactlyAtTheLimitIsDeliveredEvenWithCRLF() {
        let exact = String(repeating: "y", count: 10)
        XCTAssertEqual(read("\(exact)\r\n\(exact)y\n\(exact)", maxFrameBytes: 10),
                       [.line(exact, 1), .tooLong(2, 11), .line(exact, 3)])
    }

    func testATooLongFinalLineIsReportedAtEndOfStream() {
        XCTAssertEqual(read("a\n" + String(repeating: "z", count: 50), maxFrameBytes: 8), [.line("a", 1), .tooLong(2, 50)])
    }

    func testReadAvailableReportsWouldBlockOnAnEmptyNonBlockingPipe() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]) }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        let reader = FrameReader(fileDescriptor: fds[0])
        var lines: [String] = []
        let collect: (FrameEvent) -> Void = { event in
            if case let .line(bytes, _) = event { lines.append(String(decoding: bytes, as: UTF8.self)) }
        }
        XCTAssertEqual(try reader.readAvailable(collect), .wouldBlock)
        _ = "hi\nthere".withCString { write(fds[1], $0, 8) }
        XCTAssertEqual(try reader.readAvailable(collect), .readSome)
        XCTAssertEqual(lines, ["hi"])
        close(fds[1])
        XCTAssertEqual(try reader.readAvailable(collect), .endOfStream)
        XCTAssertEqual(lines, ["hi", "there"])
        XCTAssertEqual(reader.lineNumber, 2)
    }

    func testAReadErrorIsThrownWithTheDescriptor() {
        let reader = FrameReader(fileDescriptor: -1)
        XCTAssertThrowsError(try reader.run { _ in }) { error in
            XCTAssertEqual(error as? FrameReaderError, .readFailed(fileDescriptor: -1, errno: EBADF))
        }
    }

    func testAnErrorThrownByTheCallbackStopsReading() {
        struct Stop: Error {}
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]) }
        _ = "a\nb\nc\n".withCString { write(fds[1], $0, 6) }
        close(fds[1])
        let reader = FrameReader(fileDescriptor: fds[0])
        var count = 0
        XCTAssertThrowsError(try reader.run { _ in
            count += 1
            if count == 2 { throw Stop() }
        })
        XCTAssertEqual(count, 2)
    }

    func testFillReadsWithoutDeliveringAndDeliverBufferedHandsOutWhatItCompleted() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]) }
        let reader = FrameReader(fileDescriptor: fds[0])
        var lines: [Seen] = []
        let collect: (FrameEvent) -> Void = { event in
            if case let .line(bytes, number) = event { lines.append(.line(String(decoding: bytes, as: UTF8.self), number)) }
        }
        _ = "one\ntw".withCString { write(fds[1], $0, 6) }
        XCTAssertEqual(try reader.fill(), .readSome)
        XCTAssertEqual(lines, [], "fill delivers nothing")
        try reader.deliverBuffered(collect)
        XCTAssertEqual(lines, [.line("one", 1)])
        _ = "o\nthree".withCString { write(fds[1], $0, 7) }
        close(fds[1])
        XCTAssertEqual(try reader.fill(), .readSome)
        XCTAssertEqual(try reader.fill(), .endOfStream)
        XCTAssertEqual(lines, [.line("one", 1)], "fill delivers nothing, not even at the end")
        try reader.deliverBuffered(collect)
        XCTAssertEqual(lines, [.line("one", 1), .line("two", 2), .line("three", 3)])
        try reader.deliverBuffered(collect)
        XCTAssertEqual(try reader.fill(), .endOfStream)
        XCTAssertEqual(lines.count, 3, "the last line is delivered once")
    }

    func testLinesLeftByAThrowingCallbackAreDeliveredByTheNextCall() throws {
        struct Stop: Error {}
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]) }
        _ = "a\nb\nc\n".withCString { write(fds[1], $0, 6) }
        let reader = FrameReader(fileDescriptor: fds[0])
        var lines: [String] = []
        XCTAssertEqual(try reader.fill(), .readSome)
        XCTAssertThrowsError(try reader.deliverBuffered { event in
            if case let .line(bytes, _) = event { lines.append(String(decoding: bytes, as: UTF8.self)) }
            if lines.count == 1 { throw Stop() }
        })
        XCTAssertEqual(lines, ["a"])
        _ = "d\n".withCString { write(fds[1], $0, 2) }
        close(fds[1])
        XCTAssertEqual(try reader.readAvailable { event in
            if case let .line(bytes, _) = event { lines.append(String(decoding: bytes, as: UTF8.self)) }
        }, .readSome)
        XCTAssertEqual(lines, ["a", "b", "c", "d"], "b and c, read before the throw, come before d")
        XCTAssertEqual(reader.lineNumber, 4)
    }
}
