import CommPluginAPI
import Glibc
import XCTest
@testable import CommHost

/// The host's reader of plugin structs (ABI requirement 15) against a struct
/// that ends right before an unreadable page, as an older plugin's shorter
/// struct would: reading one byte past its `struct_size` would fault.
final class ABIStructTests: XCTestCase {
    /// A host-side layout one field longer than the plugin's 1.0 message.
    private struct GrownMessage {
        var message = commhost_message()
        var grown: UInt64 = 0
    }

    /// What a host with the grown layout reads from `pointer`.
    private func readGrown(_ pointer: UnsafeRawPointer) -> GrownMessage {
        var copy = GrownMessage()
        withUnsafeMutablePointer(to: &copy) { ABIStruct.copyPrefix(of: pointer, into: $0, hostSize: MemoryLayout<GrownMessage>.size) }
        return copy
    }

    /// Calls `body` with `bytes` placed so that they end exactly where a
    /// PROT_NONE page begins.
    private func withBytesBeforeAGuardPage<R>(_ bytes: [UInt8], _ body: (UnsafeRawPointer) -> R) throws -> R {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let region = try XCTUnwrap(mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        XCTAssertNotEqual(region, MAP_FAILED)
        defer { munmap(region, 2 * page) }
        XCTAssertEqual(mprotect(region + page, page, PROT_NONE), 0)
        let start = region + page - bytes.count
        bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return body(UnsafeRawPointer(start))
    }

    func testAShorterPluginStructIsReadUpToItsStructSizeAndTheRestIsAbsent() throws {
        let data = "{\"a\":1}"
        try data.withCString { text in
            var message = commhost_message(struct_size: MemoryLayout<commhost_message>.size,
                                           data: commhost_str(ptr: text, len: 7), metadata: commhost_str(ptr: nil, len: 0),
                                           buffers: nil, buffer_count: 0)
            let bytes = withUnsafeBytes(of: &message) { Array($0) }
            let read = try withBytesBeforeAGuardPage(bytes) { readGrown($0) }
            XCTAssertEqual(read.message.struct_size, MemoryLayout<commhost_message>.size)
            XCTAssertEqual(read.message.data.len, 7)
            XCTAssertEqual(read.message.data.ptr, text)
            XCTAssertEqual(read.grown, 0, "a field past the plugin's struct_size reads as absent")
        }
    }

    func testAStructAsLargeAsTheHostsIsReadWhole() throws {
        var grown = GrownMessage(message: commhost_message(struct_size: MemoryLayout<GrownMessage>.size, data: commhost_str(ptr: nil, len: 0),
                                                           metadata: commhost_str(ptr: nil, len: 0), buffers: nil, buffer_count: 3),
                                 grown: 42)
        let bytes = withUnsafeBytes(of: &grown) { Array($0) }
        let read = try withBytesBeforeAGuardPage(bytes) { readGrown($0) }
        XCTAssertEqual(read.grown, 42)
        XCTAssertEqual(read.message.buffer_count, 3)
    }

    func testALargerPluginStructIsReadAtTheHostsSize() throws {
        // A newer plugin's message: the host's fields first, then ones it does not know.
        var message = commhost_message(struct_size: MemoryLayout<commhost_message>.size + 16, data: commhost_str(ptr: nil, len: 0),
                                       metadata: commhost_str(ptr: nil, len: 0), buffers: nil, buffer_count: 5)
        let bytes = withUnsafeBytes(of: &message) { Array($0) } + [UInt8](repeating: 0xAB, count: 16)
        let read = try withBytesBeforeAGuardPage(bytes) { ABIStruct.message($0.assumingMemoryBound(to: commhost_message.self)) }
        XCTAssertEqual(read.buffer_count, 5)
        XCTAssertEqual(read.struct_size, MemoryLayout<commhost_message>.size + 16)
    }
}
