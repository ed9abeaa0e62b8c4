import Foundation
import XCTest

/// The `commhost` command line: inspect, check, usage errors.
final class CLITests: XCTestCase {
    private func commhost(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try TestSupport.run(TestSupport.commhostBinary, arguments)
    }

    func testInspectPrintsEachExamplePluginsHandlers() throws {
        let echo = try commhost(["inspect", TestSupport.plugin("Echo")])
        XCTAssertEqual(echo.status, 0, echo.output)
        XCTAssertTrue(echo.output.contains("name:     echo"), echo.output)
        XCTAssertTrue(echo.output.contains("abi:      1.0"), echo.output)
        XCTAssertTrue(echo.output.contains("handlers:\n  echo"), echo.output)
        let counter = try commhost(["inspect", TestSupport.plugin("Counter")])
        XCTAssertEqual(counter.status, 0, counter.output)
        XCTAssertTrue(counter.output.contains("  counter (hand-off on reload)"), counter.output)
    }

    func testInspectJSONIsOneObjectWithTheHandlers() throws {
        let result = try commhost(["inspect", "--json", TestSupport.plugin("Echo")])
        XCTAssertEqual(result.status, 0)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        XCTAssertEqual(object["ok"] as? Bool, true)
        XCTAssertEqual((object["handlers"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["echo"])
    }

    func testInspectOnANonPluginExitsOneWithTheReason() throws {
        let result = try commhost(["inspect", TestSupport.repoRoot + "/Package.swift"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.output, TestSupport.repoRoot + "/Package.swift: not an ELF file (no ELF magic); expected a shared library (.so)\n")
    }

    func testCheckOfTheDefaultManifestExitsZero() throws {
        let result = try commhost(["check", TestSupport.repoRoot + "/manifest/commhost.json"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("ok: 2 enabled targets"), result.output)
    }

    func testCheckWithThreeMistakesPrintsThreeLinesAndExitsOne() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let manifest = """
        {
          "version": 1,
          "targets": [
            {"target_name": "a", "library": "\(TestSupport.plugin("Echo"))", "handler": "echo", "enabeld": true},
            {"target_name": "b", "library": "libNowhere.so", "handler": "x"},
            {"target_name": "bad name!", "library": "\(TestSupport.plugin("Echo"))", "handler": "echo"}
          ]
        }
        """
        try manifest.write(toFile: dir + "/m.json", atomically: true, encoding: .utf8)
        let result = try commhost(["check", dir + "/m.json"])
        XCTAssertEqual(result.status, 1)
        let lines = result.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, result.output)
        XCTAssertTrue(lines[0].contains(":4: targets[0].enabeld:") && lines[0].contains("did you mean \"enabled\""), result.output)
        XCTAssertTrue(lines[1].contains(":5: targets[1].library:") && lines[1].contains("libNowhere.so"), result.output)
        XCTAssertTrue(lines[2].contains(":6: targets[2].target_name:"), result.output)
    }

    func testUsageErrorsExitTwo() throws {
        XCTAssertEqual(try commhost(["check", "--bogus"]).status, 2)
        XCTAssertEqual(try commhost(["inspect"]).status, 2)
        XCTAssertEqual(try commhost(["serve", "--dialect", "klingon"]).status, 2)
        XCTAssertEqual(try commhost(["frobnicate"]).status, 2)
    }

    func testHelpListsEveryCommandAndExitsZero() throws {
        let result = try commhost(["--help"])
        XCTAssertEqual(result.status, 0)
        for word in ["serve", "check", "inspect", "--manifest", "--dialect", "--log-level", "--watch"] {
            XCTAssertTrue(result.output.contains(word), "help mentions \(word)")
        }
    }
}
