import Foundation
import XCTest

/// `commhost try`: one library, no manifest, a scripted session, output with
/// repeatable ids (compared with a golden file), the ABI rules checked as it goes.
final class TryTests: XCTestCase {
    override class func tearDown() {
        ServeFixture.removeProbe()
        super.tearDown()
    }

    /// Runs `commhost try` with `arguments` and `input` as its stdin; stdout and stderr apart.
    private func commhostTry(_ arguments: [String], input: String = "") throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.commhostBinary)
        process.arguments = ["try"] + arguments
        // stderr to a file, so neither stream can fill a pipe and block the process.
        let errorsPath = try TestSupport.temporaryDirectory(self) + "/stderr-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: errorsPath, contents: nil)
        let errors = try XCTUnwrap(FileHandle(forWritingAtPath: errorsPath))
        let stdout = Pipe(), stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = errors
        process.standardInput = stdin
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try errors.close()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), try String(contentsOfFile: errorsPath, encoding: .utf8))
    }

    func testAScriptAgainstTheCounterPrintsExactlyTheGoldenFrames() throws {
        let golden = try String(contentsOfFile: TestSupport.fixture("try_counter.golden"), encoding: .utf8)
        for _ in 0..<2 {
            let result = try commhostTry([TestSupport.plugin("Counter"), TestSupport.fixture("try_counter.script")])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, golden, "the same bytes every run (ids host-N, parents line-N)")
            XCTAssertEqual(result.stderr, "", "no rule broken")
        }
    }

    func testShortcutsAndRawFramesFromStdinWithAConfigAndAChosenHandler() throws {
        let script = """
            open
            msg {"x":[1,2]}
            {"msg_type":"comm_msg","header":{"msg_id":"raw"},"content":{"comm_id":"c1","data":{"raw":true}}}
            frobnicate
            end
            msg {"after":"end"}
            """
        let result = try commhostTry([TestSupport.plugin("Echo"), "--handler", "echo", "--target", "my.echo"], input: script)
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, result.stdout)
        XCTAssertTrue(lines[0].contains(#""parent_header":{"msg_id":"line-2"}"#) && lines[0].contains(#""data":{"x":[1,2]}"#), lines[0])
        XCTAssertTrue(lines[1].contains(#""parent_header":{"msg_id":"raw"}"#), lines[1])
        XCTAssertTrue(result.stderr.contains(#"line 4: "frobnicate" is not a frame or a shortcut"#), result.stderr)
        let badConfig = try commhostTry([TestSupport.plugin("Echo"), "--config", "{bad"])
        XCTAssertEqual(badConfig.status, 2)
        XCTAssertTrue(badConfig.stderr.hasPrefix("commhost try: --config must be JSON text:"), badConfig.stderr)
        let missing = try commhostTry([TestSupport.plugin("Echo"), "--handler", "nope"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains(#"echo has no handler "nope" (it has echo)"#), missing.stderr)
    }

    func testEveryBrokenRuleIsReportedWhereItHappensAndStrictExitsOne() throws {
        let probe = try ServeFixture.probeDirectory() + "/libprobe.so"
        let script = """
            open
            msg {"do":"bad_json"}
            msg {"do":"send_after_close"}
            close
            wait 300
            """
        let lenient = try commhostTry([probe, "--handler", "probe"], input: script)
        XCTAssertEqual(lenient.status, 0, "without --strict the rules are reported only")
        let strict = try commhostTry([probe, "--handler", "probe", "--strict"], input: script)
        XCTAssertEqual(strict.status, 1, strict.stderr)
        XCTAssertTrue(strict.stderr.contains(#"line 2: rule broken: send with data or metadata that is not a JSON object on comm "c1" (COMMHOST_EJSON"#),
                      strict.stderr)
        XCTAssertTrue(strict.stderr.contains("line 5: rule broken: send after the comm closed (COMMHOST_ECLOSED: the comm's close callback has run)"),
                      strict.stderr)
        XCTAssertTrue(strict.stderr.contains("2 rules broken"), strict.stderr)

        // A failure without text, a handle it does not hold.
        let dir = try TestSupport.temporaryDirectory(self)
        let breaker = try TestSupport.compileC(source: TestSupport.fixture("rulebreaker_plugin.c"), output: dir + "/librulebreaker.so")
        let bad = try commhostTry([breaker, "--handler", "bad", "--strict"], input: "open\nmsg\n")
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stdout.contains(#""ename":"HandlerError""#), bad.stdout)
        XCTAssertTrue(bad.stderr.contains("line 2: rule broken: comm_msg returned a failure status (-1) without error text"), bad.stderr)
        XCTAssertTrue(bad.stderr.contains("line 2: rule broken: plugin called a host function with a bad handle; refused"), bad.stderr)
    }

    func testACallbackPastTheDeadlineBreaksARule() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let source = dir + "/slow.c"
        try """
            #define _DEFAULT_SOURCE
            #include "comm_plugin.h"
            #include <unistd.h>
            static commhost_status slow_open(const commhost_handler *h, void *l, commhost_comm *c, const commhost_message *m, void **out) {
                (void)h; (void)l; (void)c; (void)m; *out = 0; return COMMHOST_OK;
            }
            static commhost_status slow_message(const commhost_handler *h, void *i, commhost_comm *c, const commhost_message *m) {
                (void)h; (void)i; (void)c; (void)m; usleep(150000); return COMMHOST_OK;
            }
            static const commhost_handler slow = { .struct_size = sizeof(commhost_handler), .name = "slow", .open = slow_open, .message = slow_message };
            static const commhost_handler *const handlers[] = { &slow };
            static const commhost_plugin plugin = { .struct_size = sizeof(commhost_plugin), .abi_major = COMMHOST_ABI_MAJOR,
                .abi_minor = COMMHOST_ABI_MINOR, .name = "slow", .version = "1", .handlers = handlers, .handler_count = 1 };
            COMMHOST_DECLARE_ENTRY { return &plugin; }
            """.write(toFile: source, atomically: true, encoding: .utf8)
        let library = try TestSupport.compileC(source: source, output: dir + "/libslow.so")
        let result = try commhostTry([library, "--handler-timeout-ms", "50", "--strict"], input: "open\nmsg\n")
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains(#"line 2: rule broken: comm_msg for comm "c1" blocked"#)
                      && result.stderr.contains("longer than handler_timeout_ms (50 ms)"), result.stderr)
    }
}
