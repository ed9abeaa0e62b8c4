import Foundation
import XCTest

/// `comm_json.h`, the JSON helper for C plugin authors: its test program
/// (Fixtures/json_helper_test.c) is built as C11 (warnings as errors,
/// pedantic, with AddressSanitizer and UndefinedBehaviorSanitizer) and as
/// C++17, and each build must print "ok".
final class JSONHelperTests: XCTestCase {
    private func buildAndRun(_ compiler: String, _ flags: [String]) throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let program = dir + "/json_helper_test"
        let build = try TestSupport.run(compiler, flags + ["-Wall", "-Wextra", "-Werror", "-I", TestSupport.includeDirectory,
                                                           "-o", program, TestSupport.fixture("json_helper_test.c"), "-lm"])
        XCTAssertEqual(build.status, 0, "\(compiler) \(flags): \(build.output)")
        let run = try TestSupport.run(program, [])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual(run.output, "ok\n", "\(compiler) \(flags)")
    }

    func testTheHelperKeepsEveryPromiseAsC11UnderSanitizers() throws {
        try buildAndRun("/usr/bin/cc", ["-std=c11", "-pedantic", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
    }

    /// docs/PLUGINS.md's JSON program (its second ```c block) builds as written and prints its reply.
    func testThePluginsPageProgramRunsAsWritten() throws {
        let page = try String(contentsOfFile: TestSupport.repoRoot + "/docs/PLUGINS.md", encoding: .utf8)
        var blocks: [String] = [], current: [String]? = nil
        for line in page.components(separatedBy: "\n") {
            if current == nil, line == "```c" { current = [] } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n") + "\n")
                current = nil
            } else if current != nil { current!.append(line) }
        }
        XCTAssertEqual(blocks.count, 2)
        let dir = try TestSupport.temporaryDirectory(self)
        let source = dir + "/json_example.c", program = dir + "/json_example"
        try blocks[1].write(toFile: source, atomically: true, encoding: .utf8)
        let build = try TestSupport.run("/usr/bin/cc", ["-std=c11", "-Wall", "-Wextra", "-Werror", "-I", TestSupport.includeDirectory,
                                                        "-o", program, source, "-lm"])
        XCTAssertEqual(build.status, 0, build.output)
        let run = try TestSupport.run(program, [])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual(run.output, "{\"method\":\"update\",\"state\":{\"value\":42,\"label\":\"café\"}}\n")
    }

    func testTheHelperKeepsEveryPromiseAsCPlusPlus() throws {
        try buildAndRun("/usr/bin/c++", ["-x", "c++", "-std=c++17", "-pedantic"])
    }
}
