import Foundation
import XCTest

/// docs/PLUGIN_GUIDE.md as a newcomer follows it: every ```sh block, in
/// order, in one shell (`set -e`, pipefail) in an empty folder, with this
/// build's `commhost` on PATH, must succeed.
final class PluginGuideTests: XCTestCase {
    func testEveryShellBlockOfTheGuideRunsInOrderFromAnEmptyFolder() throws {
        let page = try String(contentsOfFile: TestSupport.repoRoot + "/docs/PLUGIN_GUIDE.md", encoding: .utf8)
        var blocks: [String] = [], current: [String]? = nil
        for line in page.components(separatedBy: "\n") {
            if current == nil, line.hasPrefix("```") {
                current = line == "```sh" ? [] : nil
                if line != "```sh" { XCTFail("the guide's code blocks are shell blocks this test runs; found \(line)") }
            } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        XCTAssertGreaterThanOrEqual(blocks.count, 5, "the C, Swift and Rust walk-throughs")
        let dir = try TestSupport.temporaryDirectory(self)
        let script = dir + "/guide.sh"
        try (["set -euo pipefail"] + blocks).joined(separator: "\n").write(toFile: script, atomically: true, encoding: .utf8)
        let tools = try [TestSupport.commhostBinary, TestSupport.cargo(), TestSupport.swiftTool()].map { ($0 as NSString).deletingLastPathComponent }
        let result = try TestSupport.run("/bin/bash", [script], directory: dir,
                                         environment: ["PATH": (tools + ["/usr/bin", "/bin"]).joined(separator: ":")])
        XCTAssertEqual(result.status, 0, "the guide's commands, run as written:\n\(result.output)")
        XCTAssertTrue(result.output.contains("ok: no rule was broken"), result.output)
    }
}
