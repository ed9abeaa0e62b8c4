import Foundation
import Glibc
import XCTest

/// What the isolation tests share: the crash fixture compiled into a private
/// folder, and a manifest binding it isolated beside the in-process echo.
enum IsolationFixture {
    /// The in-process target every isolation manifest binds.
    static let echo = "commhost.echo"

    /// Compiles `Fixtures/<source>` into `directory/<library>`.
    static func compile(_ source: String, into directory: String, as library: String, flags: [String] = []) throws {
        try TestSupport.compileC(source: TestSupport.fixture(source), output: directory + "/" + library, flags: flags)
        chmod(directory + "/" + library, 0o755)
    }

    /// The echo target, in process, as a manifest member.
    static var echoTarget: String {
        #"{"target_name": "commhost.echo", "library": "\#(TestSupport.plugin("Echo"))", "handler": "echo"}"#
    }

    /// Writes `directory/manifest.json` (0600) with `plugin_paths` [directory]
    /// and `targets` (member text) and returns its path.
    @discardableResult
    static func writeManifest(in directory: String, targets: [String], extra: String = "") throws -> String {
        let path = directory + "/manifest.json"
        let text = """
            {"version": 1, "plugin_paths": [\(Frame.quoted(directory))],
             "targets": [\(targets.joined(separator: ",\n  "))]\(extra.isEmpty ? "" : ", " + extra)}
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    /// The crash fixture's target `name`, isolated, with `members` (e.g.
    /// `"handler_timeout_ms": 500`) added.
    static func crashTarget(_ name: String = "crash", _ members: String = "") -> String {
        #"{"target_name": "\#(name)", "library": "libcrash.so", "handler": "crash", "isolation": "process"\#(members.isEmpty ? "" : ", " + members)}"#
    }

    /// A fresh private folder holding `libcrash.so` and a manifest binding
    /// `crash` (isolated, with `members`) and the in-process echo; returns
    /// the folder and the manifest's path.
    static func crashSetup(_ test: XCTestCase, _ members: String = "") throws -> (directory: String, manifest: String) {
        let directory = try TestSupport.temporaryDirectory(test)
        try compile("crash_plugin.c", into: directory, as: "libcrash.so")
        let manifest = try writeManifest(in: directory, targets: [crashTarget("crash", members), echoTarget])
        return (directory, manifest)
    }

    /// Asks the crash comm `id` for its worker's pid.
    static func workerPID(_ host: ServeHarness, _ id: String, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        host.send(Frame.msg(id, data: #"{"pid":true}"#))
        let reply = try host.nextFrame(file: file, line: line)
        assertFrame(reply, "comm_msg", comm: id, file: file, line: line)
        return try XCTUnwrap(reply.data?["pid"] as? Int, "\(reply)", file: file, line: line)
    }

    /// Sends `data` on the echo comm `id` and checks it comes back.
    static func assertEchoes(_ host: ServeHarness, _ id: String, _ data: String, file: StaticString = #filePath, line: UInt = #line) throws {
        host.send(Frame.msg(id, data: data))
        let reply = try host.nextFrame(file: file, line: line)
        assertFrame(reply, "comm_msg", comm: id, file: file, line: line)
        assertJSON(reply.data, data, file: file, line: line)
    }

    /// Reads frames until the `comm_close` of `crashed` has come, and (when
    /// `echoed` names an echo comm with `echoData` sent) its reply too, in
    /// either order; an `error` frame for the failed callback may come
    /// between. Returns the close's data.
    static func awaitCrashClose(_ host: ServeHarness, _ crashed: String, echoed: String? = nil, echoData: String = "",
                                file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        var closeData: [String: Any]?
        var echoPending = echoed != nil
        while closeData == nil || echoPending {
            let frame = try host.nextFrame(file: file, line: line)
            if frame.msgType == "comm_close", frame.commID == crashed {
                closeData = frame.data ?? [:]
            } else if let echoed, frame.msgType == "comm_msg", frame.commID == echoed {
                assertJSON(frame.data, echoData, "the in-process comm answers", file: file, line: line)
                echoPending = false
            } else if frame.msgType == "error" {
                continue
            } else {
                XCTFail("unexpected frame \(ServeHarness.text(frame))", file: file, line: line)
            }
        }
        return closeData!
    }

    /// The stats reply's content, asked for on stdio.
    static func stats(_ host: ServeHarness, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        host.send(#"{"msg_type":"commhost_stats_request","header":{"msg_id":"stats"}}"#)
        let reply = try host.nextFrame(file: file, line: line)
        XCTAssertEqual(reply.msgType, "commhost_stats_reply", file: file, line: line)
        return reply.content
    }

    /// The `workers` entry of the library whose path ends in `/name`.
    static func workerStats(_ content: [String: Any], library name: String,
                            file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let workers = try XCTUnwrap(content["workers"] as? [String: [String: Any]], "\(content)", file: file, line: line)
        let entry = workers.first { $0.key.hasSuffix("/" + name) }
        return try XCTUnwrap(entry?.value, "no worker for \(name) in \(workers)", file: file, line: line)
    }

    /// The reason text the host gives a death by `signal` ("signal 11 (…)").
    static func signalPrefix(_ signal: Int32) -> String { "signal \(signal) (" }
}

/// Crash isolation through the real `commhost serve`: an isolated target's
/// worker crashes in every way the crash fixture knows (a signal, an exit, a
/// hang past `handler_timeout_ms`, the address space limit); the host
/// survives, closes the crashed comm with the reason, keeps the in-process
/// target answering, logs the death once and restarts the worker.
final class IsolationCrashTests: XCTestCase {
    /// Crashes the worker with `word` and checks everything a crash promises;
    /// `reason` checks the death's reason in the log.
    private func assertSurvives(_ word: String, members: String = #""handler_timeout_ms": 500"#,
                                reason check: (String) -> Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let setup = try IsolationFixture.crashSetup(self, members)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", setup.manifest])
        host.send(Frame.open("e", target: IsolationFixture.echo))
        host.send(Frame.open("k1", target: "crash"))
        let firstPID = try IsolationFixture.workerPID(host, "k1", file: file, line: line)
        XCTAssertNotEqual(firstPID, Int(host.pid), "the crash target runs in another process", file: file, line: line)

        host.send(Frame.msg("k1", data: "{\"crash\":\"\(word)\"}"))
        host.send(Frame.msg("e", data: #"{"during":true}"#))
        let closeData = try IsolationFixture.awaitCrashClose(host, "k1", echoed: "e", echoData: #"{"during":true}"#, file: file, line: line)
        assertJSON(closeData, #"{"reason":"handler crashed"}"#, file: file, line: line)

        let died = try host.waitForLog("worker died", file: file, line: line)
        let reason = died["reason"] as? String ?? ""
        XCTAssertTrue(check(reason), "reason: \(reason)", file: file, line: line)
        let last = died["last_callback"] as? String ?? ""
        XCTAssertTrue(last.contains("\"k1\"") && last.contains("crash"), "last_callback names the comm and target: \(last)", file: file, line: line)
        XCTAssertEqual(died["pid"] as? Int, firstPID, file: file, line: line)

        try host.waitForLog("worker restarted", file: file, line: line)
        try IsolationFixture.assertEchoes(host, "e", #"{"after":true}"#, file: file, line: line)
        host.send(Frame.open("k2", target: "crash"))
        let secondPID = try IsolationFixture.workerPID(host, "k2", file: file, line: line)
        XCTAssertNotEqual(secondPID, firstPID, "a new worker serves the target", file: file, line: line)
        try IsolationFixture.assertEchoes(host, "k2", #"{"works":"again"}"#, file: file, line: line)

        host.finish(file: file, line: line)
        let deaths = host.stderrLines.filter { ($0["msg"] as? String)?.contains("worker died") == true }
        XCTAssertEqual(deaths.count, 1, "one death logged: \(host.stderrText)", file: file, line: line)
    }

    func testASegfaultClosesTheCommWithTheReasonAndTheWorkerRestarts() throws {
        try assertSurvives("segv") { $0.hasPrefix(IsolationFixture.signalPrefix(SIGSEGV)) }
    }

    func testAnAbortClosesTheCommWithTheReasonAndTheWorkerRestarts() throws {
        try assertSurvives("abort") { $0.hasPrefix(IsolationFixture.signalPrefix(SIGABRT)) }
    }

    func testAnExitClosesTheCommWithTheReasonAndTheWorkerRestarts() throws {
        try assertSurvives("exit") { $0 == "exit status 3" }
    }

    func testAHangPastTheHandlerTimeoutKillsTheWorkerAndTheCommClosesWithTheReason() throws {
        try assertSurvives("loop") { $0.contains("did not return within 500 ms") && $0.contains("\"k1\"") }
    }

    func testRunningOutOfTheAddressSpaceLimitCrashesOnlyTheWorker() throws {
        try assertSurvives("alloc", members: #""worker": {"address_space_bytes": 268435456}"#) {
            $0.hasPrefix(IsolationFixture.signalPrefix(SIGSEGV))
        }
    }

    func testTheCPULimitEndsALoopingWorkerAndTheLogNamesTheSignal() throws {
        try assertSurvives("loop", members: #""handler_timeout_ms": 60000, "worker": {"cpu_seconds": 1}"#) {
            $0.hasPrefix(IsolationFixture.signalPrefix(SIGXCPU)) || $0.hasPrefix(IsolationFixture.signalPrefix(SIGKILL))
        }
    }

    func testMaxCrashesWithinTheWindowDisableTheTargetAndOtherTargetsKeepWorking() throws {
        let setup = try IsolationFixture.crashSetup(self, #""worker": {"max_crashes": 3, "crash_window_ms": 60000, "restart_backoff_ms": 10}"#)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", setup.manifest])
        host.send(Frame.open("e", target: IsolationFixture.echo))
        for round in 1...3 {
            host.send(Frame.open("k\(round)", target: "crash"))
            host.send(Frame.msg("k\(round)", data: #"{"crash":"segv"}"#))
            assertJSON(try IsolationFixture.awaitCrashClose(host, "k\(round)"), #"{"reason":"handler crashed"}"#)
            let died = try host.waitForLog("worker died")
            XCTAssertEqual(died["crashes_in_window"] as? Int, round)
            if round < 3 { try host.waitForLog("worker restarted") }
        }
        let disabled = try host.waitForLog("target disabled")
        XCTAssertEqual(disabled["crashes"] as? Int, 3)
        XCTAssertEqual(disabled["targets"] as? String, "crash")

        host.send(Frame.open("k4", target: "crash"))
        let refused = try host.nextFrame()
        assertFrame(refused, "comm_close", comm: "k4")
        let why = try XCTUnwrap(refused.data?["reason"] as? String, "\(refused)")
        XCTAssertTrue(why.contains("disabled"), why)
        try IsolationFixture.assertEchoes(host, "e", #"{"still":"here"}"#)
        let worker = try IsolationFixture.workerStats(try IsolationFixture.stats(host), library: "libcrash.so")
        XCTAssertEqual(worker["disabled"] as? Bool, true)
        XCTAssertEqual(worker["crashes"] as? Int, 3)
        XCTAssertEqual(worker["restarts"] as? Int, 2)
        XCTAssertEqual(worker["pid"] as? Int, 0, "no worker runs for a disabled target")
        host.finish()
        XCTAssertEqual(host.stderrLines.filter { $0["msg"] as? String == "worker restarted" }.count, 2,
                       "no restart after the target was disabled")
    }

    func testAnotherSessionsCommAnswersWhileAnIsolatedCallbackHangs() throws {
        // The deadline is far away: the loop ends only when the test kills
        // the worker, so the other session's answer cannot come after it.
        let setup = try IsolationFixture.crashSetup(self, #""handler_timeout_ms": 600000"#)
        let host = try SocketHost(self, directory: setup.directory, manifest: setup.manifest, socketPath: setup.directory + "/host.sock")
        let hanging = try host.connect(), other = try host.connect()
        try hanging.open("k1", target: "crash")
        try hanging.message("k1", ["pid": true], msgID: "pid")
        let pid = try XCTUnwrap((try hanging.nextFrame()["content"] as? [String: Any])?["data"] as? [String: Any])["pid"] as? Int
        try hanging.message("k1", ["crash": "loop"], msgID: "loop")
        try other.open("e", target: IsolationFixture.echo)
        for n in 1...3 {
            try other.message("e", ["n": n], msgID: "e\(n)")
            let data = (try other.nextFrame()["content"] as? [String: Any])?["data"] as? [String: Any]
            XCTAssertEqual(data?["n"] as? Int, n, "the in-process comm answers while the worker hangs")
        }
        XCTAssertEqual(kill(pid_t(try XCTUnwrap(pid)), SIGKILL), 0)
        var close: [String: Any]?
        while close == nil {
            let frame = try hanging.nextFrame()
            if frame["msg_type"] as? String == "comm_close" { close = frame }
        }
        let content = try XCTUnwrap(close?["content"] as? [String: Any])
        XCTAssertEqual(content["comm_id"] as? String, "k1")
        XCTAssertEqual((content["data"] as? [String: Any])?["reason"] as? String, "handler crashed")
        XCTAssertTrue(socketWaitUntil(timeout: 30) { host.log.contains("worker died") }, host.log)
        XCTAssertTrue(host.log.contains(IsolationFixture.signalPrefix(SIGKILL)), host.log)
        XCTAssertEqual(host.stop(), 0, host.log)
    }
}
