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
        XCTAssertEqual(blocks.count, 2, "the C section has one complete plugin, then the JSON helper's program (JSONHelperTests)")
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
        let ended = host.stderrLines.filter { $0["msg"] as? String == "clock: session ended" }
        XCTAssertEqual(ended.count, 1, "session_end ran once: \(host.stderrText)")
        XCTAssertEqual(ended.first?["plugin"] as? String, "clock", "the log line carries the library's name")
    }

    /// The fenced blocks of docs/PLUGINS.md with the info string `language`, in order.
    private func blocks(_ language: String) throws -> [String] {
        let page = try String(contentsOfFile: TestSupport.repoRoot + "/docs/PLUGINS.md", encoding: .utf8)
        var blocks: [String] = [], current: [String]? = nil
        for line in page.components(separatedBy: "\n") {
            if current == nil, line == "```" + language {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n") + "\n")
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// The Swift section's package, as a vendor would make it from the page:
    /// the blocks that start with a `// path` comment are written to that
    /// path in a package folder beside a folder called `commhost` (this
    /// repository), built with `swift build`, and served with the page's
    /// manifest.
    func testSwiftExamplePackageBuildsAndItsPluginSpeaksFirstAndTicks() throws {
        let root = "\(dir!)/vendor", package = root + "/Ticker"
        try FileManager.default.createDirectory(atPath: package, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/commhost", withDestinationPath: TestSupport.repoRoot)
        var written: [String] = []
        for block in try blocks("swift") {
            let first = String(block.prefix { $0 != "\n" })
            guard first.hasPrefix("// "), first.hasSuffix(".swift") else { continue }
            let path = package + "/" + first.dropFirst(3)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            // Package.swift must start with its tools-version line: drop the path comment.
            let text = first.hasSuffix("Package.swift") ? String(block.drop { $0 != "\n" }.dropFirst()) : block
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            written.append(String(first.dropFirst(3)))
        }
        XCTAssertEqual(written, ["Package.swift", "Sources/Ticker/Ticker.swift"], "the page shows the package and its one source file")
        let manifests = try blocks("json").filter { $0.contains("libTicker.so") }
        XCTAssertEqual(manifests.count, 1)
        try XCTUnwrap(manifests.first).write(toFile: package + "/ticker.json", atomically: true, encoding: .utf8)
        chmod(package + "/ticker.json", 0o600)

        let build = try TestSupport.run(TestSupport.swiftTool(), ["build", "--package-path", package])
        XCTAssertEqual(build.status, 0, "swift build of the page's package:\n\(build.output)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: package + "/.build/debug/libTicker.so"), "the library is where the page says")

        let host = try ServeHarness(self, arguments: ["serve", "--manifest", package + "/ticker.json"])
        let open = try host.nextFrame()
        assertFrame(open, "comm_open")
        XCTAssertEqual(open.content["target_name"] as? String, "ticker.view")
        assertJSON(open.data, #"{"ticks":0}"#)
        let ticker = try XCTUnwrap(open.commID)
        let first = try next(host) { $0.commID == ticker && $0.msgType == "comm_msg" }
        XCTAssertEqual(first.data?["ticks"] as? Int, 1, "the timer updates the comm the session opened")
        let second = try next(host) { $0.commID == ticker && $0.msgType == "comm_msg" }
        XCTAssertEqual(second.data?["ticks"] as? Int, 2)
        host.send(Frame.msg(ticker, data: #"{"reset":true}"#, msgID: "reset"))
        let reset = try next(host) { $0.parentMsgID == "reset" }
        assertJSON(reset.data, #"{"ticks":0}"#)
        host.finish()
        let ended = host.stderrLines.filter { ($0["msg"] as? String ?? "").hasPrefix("ticker: session ") }
        XCTAssertEqual(ended.count, 1, "session_end ran once: \(host.stderrText)")
        XCTAssertEqual(ended.first?["plugin"] as? String, "ticker", "the plugin's log line carries its library's name")
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
