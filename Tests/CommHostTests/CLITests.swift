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

    func testInspectRefusesWhatCheckAndServeWouldRefuseBeforeLoading() throws {
        let dir = try TestSupport.temporaryDirectory(self) + "/shared"
        XCTAssertEqual(mkdir(dir, 0o755), 0)
        XCTAssertEqual(chmod(dir, 0o777), 0)
        let library = dir + "/libEchoPlugin.so"
        try FileManager.default.copyItem(atPath: TestSupport.plugin("Echo"), toPath: library)
        let inspect = try commhost(["inspect", library])
        XCTAssertEqual(inspect.status, 1)
        XCTAssertTrue(inspect.output.contains("directory \(dir) is writable by group and others (mode 0777); fix with: chmod go-w \(dir)"), inspect.output)
        let manifest = dir + "/../m.json"
        try #"{"version": 1, "plugin_paths": ["\#(dir)"], "targets": [{"target_name": "t", "library": "\#(library)", "handler": "echo"}]}"#.write(toFile: manifest, atomically: true, encoding: .utf8)
        let check = try commhost(["check", manifest])
        XCTAssertEqual(check.status, 1, "check refuses the same library: \(check.output)")
        XCTAssertTrue(check.output.contains("is writable by group and others (mode 0777)"), check.output)
        XCTAssertEqual(chmod(dir, 0o755), 0)
        XCTAssertEqual(try commhost(["inspect", library]).status, 0, "and both load it once the directory is safe")
        XCTAssertEqual(try commhost(["check", manifest]).status, 0)
    }

    func testInspectCheckRunsEachHandlerOnceAndNamesTheRulesItBreaks() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let library = try TestSupport.compileC(source: TestSupport.fixture("rulebreaker_plugin.c"), output: dir + "/librulebreaker.so")
        let result = try commhost(["inspect", "--check", library])
        XCTAssertEqual(result.status, 1, result.output)
        let bad = try XCTUnwrap(result.output.components(separatedBy: "handler bad:").last)
        let good = try XCTUnwrap(result.output.components(separatedBy: "handler bad:").first?.components(separatedBy: "handler good:").last)
        XCTAssertTrue(good.contains("open: ok") && good.contains("comm_msg: ok") && good.contains("sent: 1 comm_msg"), good)
        XCTAssertFalse(good.contains("rule broken"), good)
        XCTAssertTrue(bad.contains("comm_msg: failed: comm_msg for comm \"inspect-bad\""), bad)
        XCTAssertTrue(bad.contains("rule broken: comm_msg returned a failure status (-1) without error text"), bad)
        XCTAssertTrue(bad.contains("rule broken: plugin called a host function with a bad handle; refused (plugin: rulebreaker"), bad)
        XCTAssertTrue(bad.contains("call: release_comm with a comm handle it does not hold") && bad.contains(") (2 times)"), bad)

        let json = try commhost(["inspect", "--check", "--json", library])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        XCTAssertEqual(object["ok"] as? Bool, false)
        let handlers = try XCTUnwrap(object["handlers"] as? [[String: Any]])
        XCTAssertEqual(handlers.map { $0["handler"] as? String }, ["good", "bad"])
        XCTAssertEqual((handlers[0]["breaches"] as? [String])?.count, 0)
        XCTAssertEqual((handlers[1]["breaches"] as? [String])?.count, 2)

        for plugin in ["Echo", "Counter"] {
            let clean = try commhost(["inspect", "--check", TestSupport.plugin(plugin)])
            XCTAssertEqual(clean.status, 0, clean.output)
            XCTAssertTrue(clean.output.contains("ok: no rule was broken"), clean.output)
        }
        // A plugin that refuses client opens by design: reported, not a broken rule.
        let widgets = try commhost(["inspect", "--check", TestSupport.plugin("Widgets")])
        XCTAssertEqual(widgets.status, 0, widgets.output)
        XCTAssertTrue(widgets.output.contains("session_start: ok, 13 frame(s) sent before any input"), widgets.output)
        XCTAssertTrue(widgets.output.contains("open: failed:") && widgets.output.contains("comm_msg: not run (open failed)"), widgets.output)
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
        for arguments in [["--help"], ["help"], ["-h"]] {
            let result = try commhost(arguments)
            XCTAssertEqual(result.status, 0, "\(arguments)")
            for word in ["serve", "stats", "check", "inspect", "try", "help", "--version"] {
                XCTAssertTrue(result.output.contains(word), "\(arguments): help mentions \(word)")
            }
        }
    }

    func testEachCommandHasItsOwnHelpByHelpOrByTheFlag() throws {
        let options = ["serve": ["--manifest", "--dialect", "--log-level", "--watch", "--socket", "--socket-mode", "--trace"],
                       "stats": ["--socket", "--json", "--timeout"], "check": ["--json", "FILE"], "inspect": ["--json", "LIBRARY"],
                       "worker": ["--fd", "--library"], "try": ["--handler", "--target", "--config", "--strict", "SCRIPT", "wait MS"]]
        for (command, words) in options {
            let byHelp = try commhost(["help", command]), byFlag = try commhost([command, "--help"])
            XCTAssertEqual(byHelp.status, 0, command)
            XCTAssertEqual(byHelp.output, byFlag.output, "\(command): help and --help print the same")
            XCTAssertTrue(byHelp.output.hasPrefix("usage: commhost \(command == "serve" ? "[serve]" : command)"), byHelp.output)
            for word in words { XCTAssertTrue(byHelp.output.contains(word), "\(command) help mentions \(word)") }
            for other in options.keys where other != command && other != "serve" {
                XCTAssertFalse(byHelp.output.contains("usage: commhost \(other)"), "\(command) help is its own")
            }
        }
    }

    func testAnUnknownOptionIsOneLineWithADidYouMean() throws {
        let result = try commhost(["serve", "--manfest", "x.json"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.output, "commhost serve: unknown option --manfest; did you mean --manifest? (commhost help serve)\n")
        let far = try commhost(["check", "--bogus"])
        XCTAssertEqual(far.output, "commhost check: unknown option --bogus (commhost help check)\n")
        let command = try commhost(["chek"])
        XCTAssertEqual(command.status, 2)
        XCTAssertEqual(command.output, "commhost help: unknown command \"chek\"; did you mean check? (commhost help lists the commands)\n")
        let topic = try commhost(["help", "inspekt"])
        XCTAssertEqual(topic.status, 2)
        XCTAssertEqual(topic.output, "commhost help: no command \"inspekt\"; did you mean inspect? (commhost help lists the commands)\n")
    }

    func testVersionNamesCommhostAndThePluginABI() throws {
        for arguments in [["--version"], ["version"]] {
            let result = try commhost(arguments)
            XCTAssertEqual(result.status, 0)
            XCTAssertEqual(result.output, "commhost 0.4.0 (plugin ABI 1.0)\n", "\(arguments)")
        }
    }

    func testTraceWritesEveryFrameInAndOutWithItsSessionCommAndLine() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        for dialect in ["jupyter", "shinywidgets"] {
            let trace = dir + "/trace-\(dialect).jsonl"
            let input = dialect == "jupyter"
                ? #"{"msg_type":"comm_open","header":{"msg_id":"m1"},"content":{"comm_id":"c1","target_name":"commhost.echo","data":{}}}"# + "\n"
                    + #"{"msg_type":"comm_msg","header":{"msg_id":"m2"},"content":{"comm_id":"c1","data":{"q":"a\"b"}}}"# + "\nnot json\n"
                : #"{"content":{"comm_id":"w1","data":{"method":"update"}},"metadata":{},"buffers":[],"header":{"msg_id":"x"}}"# + "\n"
            let result = try TestSupport.run(TestSupport.commhostBinary, ["serve", "--manifest", TestSupport.repoRoot + "/manifest/commhost.json",
                                                                          "--dialect", dialect, "--trace", trace, "--log-level", "error"], input: input)
            XCTAssertEqual(result.status, 0, result.output)
            let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map {
                try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            let brief = lines.map { "\($0["dir"] as? String ?? "?") \($0["comm_id"] as? String ?? "-") \($0["line"] as? Int ?? 0)" }
            if dialect == "jupyter" {
                XCTAssertEqual(brief, ["in c1 1", "in c1 2", "out c1 0", "in - 3", "out - 0"])
                XCTAssertEqual(lines[1]["frame"] as? String, #"{"msg_type":"comm_msg","header":{"msg_id":"m2"},"content":{"comm_id":"c1","data":{"q":"a\"b"}}}"#,
                               "the frame's own text")
                XCTAssertEqual(lines[3]["frame"] as? String, "not json")
            } else {
                // The comm_close for the unknown comm names it inside the escaped message text.
                XCTAssertEqual(brief, ["in w1 1", "out w1 0"])
            }
            for line in lines {
                XCTAssertEqual(line["session"] as? Int, 1)
                XCTAssertNotNil(line["ts"] as? Double)
            }
        }
    }

    func testAServeThatCannotStartEndsWithOneLineSayingWhy() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let result = try commhost(["serve", "--manifest", TestSupport.repoRoot + "/manifest/commhost.json", "--trace", dir + "/no/such/dir/trace"])
        XCTAssertEqual(result.status, 1)
        let last = try XCTUnwrap(result.output.split(separator: "\n").last)
        XCTAssertTrue(last.contains("refusing to serve: cannot open the --trace file"), result.output)
    }
}
