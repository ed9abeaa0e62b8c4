import Foundation
import Glibc
import XCTest

/// The C example in docs/PLUGINS.md compiles as written, exports only its
/// entry, and serves what the page says it does.
final class PluginsDocTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
    }

    /// The fenced ```c blocks of docs/PLUGINS.md, in order.
    private func cBlocks() throws -> [String] {
        let page = try String(contentsOfFile: TestSupport.repoRoot + "/docs/PLUGINS.md", encoding: .utf8)
        var blocks: [String] = [], current: [String]? = nil
        for line in page.components(separatedBy: "\n") {
            if current == nil, line == "```c" {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n") + "\n")
                current = nil
            } else {
                current?.append(line)
            }
        }
        XCTAssertNil(current, "a ```c block is not closed")
        return blocks
    }

    /// Builds the page's one C example as `libclock.so` in the test folder,
    /// with the flags the page gives and every warning an error.
    @discardableResult
    private func buildExample() throws -> String {
        let blocks = try cBlocks()
        XCTAssertEqual(blocks.count, 1, "the C section has one complete example")
        let source = "\(dir!)/clock.c", output = "\(dir!)/libclock.so"
        try XCTUnwrap(blocks.first).write(toFile: source, atomically: true, encoding: .utf8)
        let result = try TestSupport.run("/usr/bin/cc", ["-shared", "-fPIC", "-fvisibility=hidden", "-pthread",
                                                         "-Wall", "-Wextra", "-Werror", "-I", TestSupport.includeDirectory,
                                                         "-o", output, source])
        XCTAssertEqual(result.status, 0, "the example compiles as written:\n\(result.output)")
        chmod(output, 0o755)
        return output
    }

    func testCExampleCompilesWarningFreeAndExportsOnlyTheEntry() throws {
        let library = try buildExample()
        let symbols = try TestSupport.run("/usr/bin/nm", ["-D", "--defined-only", library])
        XCTAssertEqual(symbols.status, 0, symbols.output)
        let exported = symbols.output.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count == 3 && fields[1] == "T" ? String(fields[2]) : nil
        }
        XCTAssertEqual(exported, ["commhost_plugin_entry"], symbols.output)
    }

    /// Serving through the example needs the 1.0 host (sessions, timers, post).
    func testCExampleOpensAClockPerSessionTicksItAndServesClientClocks() throws {
        try buildExample()
        let manifest = """
        {"version": 1, "plugin_paths": [\(Frame.quoted(dir!))],
         "targets": [{"target_name": "clock", "library": "libclock.so", "handler": "clock"}]}
        """
        let manifestPath = "\(dir!)/manifest.json"
        try manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)
        chmod(manifestPath, 0o600)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", manifestPath])

        // session_start speaks first: the plugin's own comm, then its ticks.
        let greeting = try host.nextFrame()
        assertFrame(greeting, "comm_open")
        XCTAssertEqual(greeting.content["target_name"] as? String, "clock.view")
        assertJSON(greeting.data, #"{"ticks":0}"#)
        let view = try XCTUnwrap(greeting.commID)
        let tick = try next(host) { $0.msgType == "comm_msg" && $0.commID == view }
        XCTAssertEqual(tick.data?["ticks"] as? Int, 1, "the timer updates the comm the session opened")

        // A clock the client opens: reset, a refused message, work on a thread.
        host.send(Frame.open("c1", target: "clock"))
        host.send(Frame.msg("c1", data: #"{"reset":true}"#, msgID: "reset"))
        let reset = try next(host) { $0.parentMsgID == "reset" }
        assertFrame(reset, "comm_msg", comm: "c1")
        assertJSON(reset.data, #"{"ticks":0}"#)
        host.send(Frame.msg("c1", data: #"{"what":1}"#, msgID: "what"))
        let refused = try next(host) { $0.parentMsgID == "what" }
        assertFrame(refused, "error")
        XCTAssertTrue((refused.content["evalue"] as? String ?? "").contains("clock understands"), "set_error text: \(refused)")
        host.send(Frame.msg("c1", data: #"{"slow":true}"#))
        let done = try next(host) { $0.commID == "c1" && $0.data?["slow"] != nil }
        assertJSON(done.data, #"{"slow":"done"}"#)

        host.send(Frame.close("c1"))
        host.finish()
    }

    /// The next frame that `matches`, skipping others (clock ticks arrive at any time).
    private func next(_ host: ServeHarness, file: StaticString = #filePath, line: UInt = #line,
                      where matches: ([String: Any]) -> Bool) throws -> [String: Any] {
        for _ in 0..<100 {
            let frame = try host.nextFrame(file: file, line: line)
            if matches(frame) { return frame }
        }
        XCTFail("no matching frame among the next 100", file: file, line: line)
        throw ServeHarness.Failure(description: "no matching frame")
    }
}
