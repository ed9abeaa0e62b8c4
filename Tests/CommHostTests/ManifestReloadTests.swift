import Foundation
import XCTest

/// Live manifest reload (SIGHUP) against the real binary.
final class ManifestReloadTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
        for name in ["libtally.so", "libother.so"] {
            try TestSupport.compileC(source: TestSupport.fixture("handoff_plugin.c"), output: "\(dir!)/\(name)")
        }
    }

    private func writeManifest(_ targets: String) throws {
        let text = """
        {"version": 1, "plugin_paths": ["."], "targets": [\(targets)]}
        """
        try text.write(toFile: "\(dir!)/manifest.json", atomically: true, encoding: .utf8)
        chmod("\(dir!)/manifest.json", 0o600)
    }

    private let echo = #"{"target_name": "commhost.echo", "library": "ECHO", "handler": "echo"}"#

    private func start() throws -> ServeHarness {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", "\(dir!)/manifest.json"])
        try host.waitForLog("serving on stdio")
        return host
    }

    private func open(_ host: ServeHarness, _ id: String, _ target: String) {
        host.send(json: ["msg_type": "comm_open", "content": ["comm_id": id, "target_name": target, "data": [:]]])
    }

    private func message(_ host: ServeHarness, _ id: String, _ data: [String: Any]) throws -> [String: Any] {
        host.send(json: ["msg_type": "comm_msg", "content": ["comm_id": id, "data": data]])
        return try host.nextFrame()
    }

    private func content(_ frame: [String: Any]) -> [String: Any] { frame["content"] as? [String: Any] ?? [:] }

    func testSighupWithValidEditAddsRemovesAndChangesTargetsWhileUnchangedCommKeepsAnswering() throws {
        let echoTarget = echo.replacingOccurrences(of: "ECHO", with: TestSupport.plugin("Echo"))
        try writeManifest("""
        \(echoTarget),
        {"target_name": "tally", "library": "libtally.so", "handler": "tally", "config": {"round": 1}},
        {"target_name": "going", "library": "libother.so", "handler": "tally"}
        """)
        let host = try start()
        open(host, "e", "commhost.echo")
        open(host, "t", "tally")
        open(host, "g", "going")
        XCTAssertEqual((content(try message(host, "t", ["seq": 1]))["data"] as? [String: Any])?["value"] as? Int, 1)
        XCTAssertEqual((content(try message(host, "g", ["seq": 1]))["data"] as? [String: Any])?["value"] as? Int, 1)

        try writeManifest("""
        \(echoTarget),
        {"target_name": "tally", "library": "libtally.so", "handler": "tally", "config": {"round": 2}},
        {"target_name": "added", "library": "libother.so", "handler": "tally"}
        """)
        host.signal(SIGHUP)
        let log = try host.waitForLog("manifest reloaded")
        XCTAssertEqual(log["added"] as? String, "added")
        XCTAssertEqual(log["removed"] as? String, "going")
        XCTAssertEqual(log["changed"] as? String, "tally")
        XCTAssertEqual(log["handed_off"] as? Int, 1)

        // The removed target's comm is closed toward the client.
        let close = try host.nextFrame()
        XCTAssertEqual(close["msg_type"] as? String, "comm_close")
        XCTAssertEqual(content(close)["comm_id"] as? String, "g")
        XCTAssertEqual((content(close)["data"] as? [String: Any])?["reason"] as? String, "target removed", "the close says why")
        // The unchanged target's comm answers, byte for byte.
        XCTAssertEqual((content(try message(host, "e", ["still": "here"]))["data"] as? [String: Any])?["still"] as? String, "here")
        // The changed target kept its state through the hand-off.
        XCTAssertEqual((content(try message(host, "t", ["seq": 2]))["data"] as? [String: Any])?["value"] as? Int, 2)
        // The added target opens; the removed one no longer does.
        open(host, "n", "added")
        XCTAssertEqual((content(try message(host, "n", ["seq": 1]))["data"] as? [String: Any])?["value"] as? Int, 1)
        open(host, "x", "going")
        let refused = try host.nextFrame()
        XCTAssertEqual(refused["msg_type"] as? String, "comm_close")
        XCTAssertEqual(content(refused)["comm_id"] as? String, "x")
        XCTAssertEqual((content(refused)["data"] as? [String: Any])?["reason"] as? String, #"no target "going" is served here"#)
    }

    func testSighupWithInvalidEditChangesNothing() throws {
        try writeManifest(#"{"target_name": "tally", "library": "libtally.so", "handler": "tally"}"#)
        let host = try start()
        open(host, "t", "tally")
        XCTAssertEqual((content(try message(host, "t", ["seq": 1]))["data"] as? [String: Any])?["value"] as? Int, 1)
        try writeManifest(#"{"target_name": "tally", "libary": "libtally.so", "handler": "tally"}, {"target_name": "new", "library": "libother.so", "handler": "tally"}"#)
        host.signal(SIGHUP)
        let log = try host.waitForLog("manifest reload refused")
        XCTAssertEqual(log["problems"] as? Int, 2, host.stderrText)
        XCTAssertTrue(host.stderrLines.contains { ($0["msg"] as? String).map { $0.contains("did you mean") && $0.contains("targets[0]") } == true })
        XCTAssertEqual((content(try message(host, "t", ["seq": 2]))["data"] as? [String: Any])?["value"] as? Int, 2)
        open(host, "n", "new")
        let refused = try host.nextFrame()
        XCTAssertEqual(refused["msg_type"] as? String, "comm_close", "the invalid edit's new target was not added")
    }

    func testEditedManifestIsAppliedWhenReloadWatchIsOn() throws {
        let watched = #""reload": {"watch": true, "debounce_ms": 20}"#
        var text = """
        {"version": 1, "plugin_paths": ["."], \(watched), "targets": [{"target_name": "tally", "library": "libtally.so", "handler": "tally"}]}
        """
        try text.write(toFile: "\(dir!)/manifest.json", atomically: true, encoding: .utf8)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", "\(dir!)/manifest.json"])
        try host.waitForLog("watching for reloads")
        text = text.replacingOccurrences(of: "]}", with: #", {"target_name": "more", "library": "libother.so", "handler": "tally"}]}"#)
        try text.write(toFile: "\(dir!)/manifest.json", atomically: true, encoding: .utf8)
        let log = try host.waitForLog("manifest reloaded")
        XCTAssertEqual(log["added"] as? String, "more")
        open(host, "m", "more")
        XCTAssertEqual((content(try message(host, "m", ["seq": 1]))["data"] as? [String: Any])?["value"] as? Int, 1)
    }
}
