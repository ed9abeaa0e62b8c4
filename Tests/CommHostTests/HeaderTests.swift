import Foundation
import XCTest

/// `comm_plugin.h` is self-contained and compiles cleanly as C11 and as C++
/// with every warning an error.
final class HeaderTests: XCTestCase {
    private func compile(_ compiler: String, _ language: [String], source: String) throws -> (status: Int32, output: String) {
        let dir = try TestSupport.temporaryDirectory(self)
        let file = dir + "/use_header.c"
        try source.write(toFile: file, atomically: true, encoding: .utf8)
        return try TestSupport.run(compiler, language + ["-Wall", "-Wextra", "-Werror", "-pedantic", "-I", TestSupport.includeDirectory,
                                                         "-fsyntax-only", file])
    }

    /// Uses every type and macro so unused-declaration warnings and layout
    /// asserts all get their chance.
    private let source = """
    #include "comm_plugin.h"
    static commhost_status entry_check(void) {
        commhost_plugin p = { sizeof(commhost_plugin), COMMHOST_ABI_MAJOR, COMMHOST_ABI_MINOR, COMMHOST_PLUGIN_CONCURRENT,
                              "n", "1", 0, 0, 0, 0 };
        commhost_message m = { sizeof(commhost_message), { "{}", 2 }, { 0, 0 }, 0, 0 };
        return COMMHOST_HAS_FIELD(&p, commhost_plugin, handler_count) && COMMHOST_HAS_FIELD(&m, commhost_message, buffer_count)
            && COMMHOST_ABI_COMPATIBLE(1, 0, p.abi_major, p.abi_minor) ? COMMHOST_OK : COMMHOST_EFAIL;
    }
    static const commhost_handler *const handlers[1] = { 0 };
    static const commhost_plugin plugin = { sizeof(commhost_plugin), COMMHOST_ABI_MAJOR, COMMHOST_ABI_MINOR, 0,
                                            "n", "1", 0, 0, handlers, 1 };
    COMMHOST_DECLARE_ENTRY { return entry_check() == COMMHOST_OK ? &plugin : 0; }
    """

    func testHeaderCompilesAsC11WithWarningsAsErrors() throws {
        let result = try compile("/usr/bin/cc", ["-x", "c", "-std=c11"], source: source)
        XCTAssertEqual(result.status, 0, result.output)
    }

    func testHeaderCompilesAsCPlusPlusWithWarningsAsErrors() throws {
        for standard in ["-std=c++11", "-std=c++17"] {
            let result = try compile("/usr/bin/c++", ["-x", "c++", standard], source: source)
            XCTAssertEqual(result.status, 0, "\(standard): \(result.output)")
        }
    }

    func testBrokenLayoutAssertFires() throws {
        // The asserts are live: a header edit that moved a field would fail the build.
        let result = try compile("/usr/bin/cc", ["-x", "c", "-std=c11"], source: """
        #include "comm_plugin.h"
        COMMHOST_STATIC_ASSERT(offsetof(commhost_handler, restore) == 0, "moved");
        """)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("moved"), result.output)
    }
}
