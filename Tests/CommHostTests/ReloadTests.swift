import Foundation
import XCTest

/// Hot reload against the real binary: plugins rebuilt inside the test while
/// `commhost serve --watch` runs, published by rename (as linkers do) or
/// rewritten in place.
final class ReloadTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
    }

    /// Compiles the hand-off fixture with `defines` to a temporary file in
    /// the plugin directory and renames it over `libtally.so`.
    private func publish(_ defines: [String] = [], inPlace: Bool = false) throws {
        let target = "\(dir!)/libtally.so"
        let output = inPlace ? target : "\(dir!)/.libtally.so.tmp"
        try TestSupport.compileC(source: TestSupport.fixture("handoff_plugin.c"), output: output, flags: defines.map { "-D\($0)" })
        if !inPlace { XCTAssertEqual(rename(output, target), 0) }
    }

    private func startHost(debounceMS: Int = 30) throws -> ServeHarness {
        try publish(["VERSION=1"])
        let manifest = """
        {"version": 1, "plugin_paths": ["."],
         "targets": [{"target_name": "tally", "library": "libtally.so", "handler": "tally"},
                     {"target_name": "commhost.echo", "library": "\(TestSupport.plugin("Echo"))", "handler": "echo"}],
         "reload": {"watch": true, "debounce_ms": \(debounceMS)}}
        """
        try manifest.write(toFile: "\(dir!)/manifest.json", atomically: true, encoding: .utf8)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", "\(dir!)/manifest.json", "--log-level", "debug"])
        try host.waitForLog("watching for reloads")
        return host
    }

    private func open(_ host: ServeHarness, _ id: String, target: String = "tally") {
        host.send(json: ["msg_type": "comm_open", "content": ["comm_id": id, "target_name": target, "data": [:]]])
    }

    /// Sends `{"seq": seq}` on `id` and returns the reply's data.
    private func tally(_ host: ServeHarness, _ id: String, seq: Int) throws -> [String: Any] {
        host.send(json: ["msg_type": "comm_msg", "content": ["comm_id": id, "data": ["seq": seq]]])
        return try data(of: host.nextFrame(), expecting: "comm_msg", id: id)
    }

    private func data(of frame: [String: Any], expecting type: String, id: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(frame["msg_type"] as? String, type, "\(frame)", file: file, line: line)
        let content = try XCTUnwrap(frame["content"] as? [String: Any], file: file, line: line)
        XCTAssertEqual(content["comm_id"] as? String, id, file: file, line: line)
        return try XCTUnwrap(content["data"] as? [String: Any], file: file, line: line)
    }

    func testCPluginWithHandOffKeepsCommIdAndStateAndRunsNewCode() throws {
        let host = try startHost()
        open(host, "a")
        XCTAssertEqual(try tally(host, "a", seq: 1)["value"] as? Int, 1)
        XCTAssertEqual(try tally(host, "a", seq: 2)["value"] as? Int, 2)
        try publish(["VERSION=2"])
        let log = try host.waitForLog("reloaded library")
        XCTAssertEqual(log["handed_off"] as? Int, 1)
        XCTAssertEqual(log["closed"] as? Int, 0)
        XCTAssertNotEqual(log["old_sha256"] as? String, log["new_sha256"] as? String)
        XCTAssertNotNil(log["swap_ms"] as? Double)
        XCTAssertNotNil(log["held_ms"] as? Double)
        let reply = try tally(host, "a", seq: 3)
        XCTAssertEqual(reply["value"] as? Int, 3, "state survived")
        XCTAssertEqual(reply["version"] as? Int, 2, "the new code answers")
    }

    func testVersionWithoutHandOffClosesItsCommsWithReasonReloaded() throws {
        let host = try startHost()
        open(host, "a")
        _ = try tally(host, "a", seq: 1)
        try publish(["VERSION=2", "NO_HANDOFF"])
        let log = try host.waitForLog("reloaded library")
        XCTAssertEqual(log["closed"] as? Int, 1)
        let close = try data(of: host.nextFrame(), expecting: "comm_close", id: "a")
        XCTAssertEqual(close["reason"] as? String, "reloaded")
        open(host, "b")
        XCTAssertEqual(try tally(host, "b", seq: 1)["version"] as? Int, 2, "new comms get the new code")
    }

    func testStateFormatTheNewVersionCannotReadClosesThoseCommsAndTheNewCodeServes() throws {
        // Version 2.0.0 writes "v2:N" and does not read 1.0.0's "N": restore
        // answers COMMHOST_ESTATE, so the comm is closed and the reload goes on.
        let host = try startHost()
        open(host, "a")
        XCTAssertEqual(try tally(host, "a", seq: 1)["value"] as? Int, 1)
        try publish(["VERSION=2", "STATE_V2"])
        let log = try host.waitForLog("reloaded library")
        XCTAssertEqual(log["handed_off"] as? Int, 0)
        XCTAssertEqual(log["closed"] as? Int, 1)
        let close = try data(of: host.nextFrame(), expecting: "comm_close", id: "a")
        XCTAssertEqual(close["reason"] as? String, "reloaded")
        open(host, "b")
        XCTAssertEqual(try tally(host, "b", seq: 1)["version"] as? Int, 2, "the new code serves new comms")
    }

    func testNewVersionMigratesTheOldStateFormatWithoutARoundTripCheck() throws {
        let host = try startHost()
        open(host, "a")
        XCTAssertEqual(try tally(host, "a", seq: 1)["value"] as? Int, 1)
        XCTAssertEqual(try tally(host, "a", seq: 2)["value"] as? Int, 2)
        try publish(["VERSION=2", "STATE_V2", "MIGRATES"])
        let log = try host.waitForLog("reloaded library")
        XCTAssertEqual(log["handed_off"] as? Int, 1, "the migration is not blocked by the round trip (the bytes differ)")
        let reply = try tally(host, "a", seq: 3)
        XCTAssertEqual(reply["value"] as? Int, 3, "the state survived the format change")
        XCTAssertEqual(reply["version"] as? Int, 2)
        XCTAssertEqual(reply["from"] as? String, "1.0.0", "restore learned the previous library version")
    }

    func testRoundTripMismatchBetweenBuildsOfOneVersionSaysHowToProceed() throws {
        let host = try startHost()
        open(host, "a")
        _ = try tally(host, "a", seq: 1)
        try publish(["VERSION=2", "BREAK_ROUNDTRIP"])
        let log = try host.waitForLog("reload failed")
        XCTAssertEqual(log["step"] as? String, "round trip")
        let reason = try XCTUnwrap(log["reason"] as? String)
        XCTAssertTrue(reason.contains("both say version 1.0.0") && reason.contains("give the new build another version text"), reason)
        XCTAssertEqual(try tally(host, "a", seq: 2)["version"] as? Int, 1, "the old build keeps serving")
    }

    /// Publishes a broken build and checks v1 keeps answering with its state
    /// and one log line names the library, the step and the reason.
    private func assertRollback(_ defines: [String], step: String, reason: String, raw: Data? = nil) throws {
        let host = try startHost()
        open(host, "a")
        XCTAssertEqual(try tally(host, "a", seq: 1)["value"] as? Int, 1)
        if let raw {
            try raw.write(to: URL(fileURLWithPath: "\(dir!)/.libtally.so.tmp"))
            XCTAssertEqual(rename("\(dir!)/.libtally.so.tmp", "\(dir!)/libtally.so"), 0)
        } else {
            try publish(defines)
        }
        let log = try host.waitForLog("reload failed")
        XCTAssertEqual(log["library"] as? String, "\(dir!)/libtally.so")
        XCTAssertEqual(log["step"] as? String, step)
        XCTAssertTrue((log["reason"] as? String)?.contains(reason) == true, "\(log)")
        let reply = try tally(host, "a", seq: 2)
        XCTAssertEqual(reply["value"] as? Int, 2)
        XCTAssertEqual(reply["version"] as? Int, 1, "v1 still serves")
        // The next good build is picked up normally.
        try publish(["VERSION=3"])
        try host.waitForLog("reloaded library")
        XCTAssertEqual(try tally(host, "a", seq: 3)["version"] as? Int, 3)
    }

    func testNonELFFileRollsBack() throws {
        try assertRollback([], step: "check ELF", reason: "not an ELF file", raw: Data("not a library".utf8))
    }

    func testTruncatedBuildRollsBack() throws {
        let scratch = "\(dir!)/full.so"
        try TestSupport.compileC(source: TestSupport.fixture("handoff_plugin.c"), output: scratch, flags: ["-DVERSION=2"])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: scratch))
        try assertRollback([], step: "check ELF", reason: "truncated", raw: bytes.prefix(bytes.count / 2))
    }

    func testMissingEntryRollsBack() throws {
        try assertRollback(["VERSION=2", "NO_ENTRY"], step: "check ABI", reason: "no entry symbol")
    }

    func testABIMismatchRollsBack() throws {
        try assertRollback(["VERSION=2", "ABI_MAJOR_VALUE=2"], step: "check ABI", reason: "ABI major version 2")
    }

    func testMissingHandlerRollsBack() throws {
        try assertRollback(["VERSION=2", "HANDLER_NAME=\"other\""], step: "handlers", reason: "no handler \"tally\"")
    }

    func testInitErrorRollsBack() throws {
        try assertRollback(["VERSION=2", "INIT_FAILS"], step: "init", reason: "tally init refuses this build")
    }

    func testRestoreErrorRollsBack() throws {
        try assertRollback(["VERSION=2", "RESTORE_FAILS"], step: "restore (new version)", reason: "tally cannot read this state")
    }

    func testRoundTripMismatchRollsBack() throws {
        try assertRollback(["VERSION=2", "BREAK_ROUNDTRIP"], step: "round trip", reason: "differs")
    }

    func testMessagesDuringTwentyReloadsArriveCompleteAndInOrder() throws {
        let host = try startHost(debounceMS: 10)
        open(host, "a")
        let sent = SentCounter()
        let sender = Thread {
            while !sent.stopped {
                host.send(json: ["msg_type": "comm_msg", "content": ["comm_id": "a", "data": ["seq": sent.next()]]])
                usleep(1_000)
            }
        }
        sender.start()
        for version in 2...21 {
            try publish(["VERSION=\(version)"])
            let log = try host.waitForLog("reloaded library")
            XCTAssertEqual(log["handed_off"] as? Int, 1)
        }
        sent.stop()
        let total = sent.count
        var last = 1
        for seq in 1...total {
            let reply = try data(of: host.nextFrame(), expecting: "comm_msg", id: "a")
            XCTAssertEqual(reply["seq"] as? Int, seq, "in order, nothing lost")
            XCTAssertEqual(reply["value"] as? Int, seq, "state carried through every reload")
            let version = try XCTUnwrap(reply["version"] as? Int)
            XCTAssertGreaterThanOrEqual(version, last)
            last = version
        }
        XCTAssertEqual(try tally(host, "a", seq: total + 1)["version"] as? Int, 21)
        XCTAssertGreaterThan(total, 20, "messages were in flight during the reloads")
    }

    func testRenamedAndRewrittenLibrariesAreEachPickedUpOnce() throws {
        let host = try startHost()
        open(host, "a")
        _ = try tally(host, "a", seq: 1)
        try publish(["VERSION=2"])
        try host.waitForLog("reloaded library")
        XCTAssertEqual(try tally(host, "a", seq: 2)["version"] as? Int, 2)
        try publish(["VERSION=3"], inPlace: true)
        try host.waitForLog("reloaded library")
        XCTAssertEqual(try tally(host, "a", seq: 3)["version"] as? Int, 3)
        // A sync point: everything logged by now is in; exactly two reloads happened.
        host.send(json: ["msg_type": "comm_info_request", "content": [:]])
        _ = try host.nextFrame()
        usleep(300_000)
        XCTAssertEqual(host.stderrLines.filter { $0["msg"] as? String == "reloaded library" }.count, 2)
    }

    func testFiftyReloadsLeaveMappedCopiesBounded() throws {
        let host = try startHost(debounceMS: 5)
        open(host, "a")
        for version in 2...51 {
            try publish(["VERSION=\(version)"])
            try host.waitForLog("reloaded library")
            XCTAssertEqual(try tally(host, "a", seq: version)["version"] as? Int, version)
        }
        let maps = try String(decoding: FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/\(host.pid)/maps")).readToEnd() ?? Data(), as: UTF8.self)
        let staged = Set(maps.split(separator: "\n").compactMap { line -> Substring? in
            guard line.contains("libtally.so") else { return nil }
            return line.split(separator: " ", omittingEmptySubsequences: true).last
        })
        XCTAssertLessThanOrEqual(staged.count, 2, "old C copies are unmapped: \(staged)")
    }

    /// Compiles the Counter example's source, with `marker` put into its
    /// "does not understand" message, and renames it over `libcounter.so`.
    private func publishCounter(marker: String) throws {
        let original = try String(contentsOfFile: TestSupport.repoRoot + "/Plugins/Counter/Counter.swift", encoding: .utf8)
        let edited = original.replacingOccurrences(of: "counter does not understand", with: "counter \(marker) does not understand")
        XCTAssertNotEqual(edited, original)
        let source = "\(dir!)/Counter.swift"
        try edited.write(toFile: source, atomically: true, encoding: .utf8)
        try TestSupport.compileSwiftPlugin(source: source, output: "\(dir!)/.libcounter.so.tmp", moduleName: "Counter")
        XCTAssertEqual(rename("\(dir!)/.libcounter.so.tmp", "\(dir!)/libcounter.so"), 0)
    }

    func testSwiftPluginReloadKeepsStateRunsNewCodeAndDoesNotCrash() throws {
        try publishCounter(marker: "v1")
        let manifest = """
        {"version": 1, "plugin_paths": ["."],
         "targets": [{"target_name": "counter", "library": "libcounter.so", "handler": "counter"}],
         "reload": {"watch": true, "debounce_ms": 30}}
        """
        try manifest.write(toFile: "\(dir!)/manifest.json", atomically: true, encoding: .utf8)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", "\(dir!)/manifest.json"])
        try host.waitForLog("watching for reloads")
        func send(_ id: String, _ data: [String: Any]) throws -> [String: Any] {
            host.send(json: ["msg_type": "comm_msg", "content": ["comm_id": id, "data": data]])
            return try self.data(of: host.nextFrame(), expecting: "comm_msg", id: id)
        }
        host.send(json: ["msg_type": "comm_open", "content": ["comm_id": "k", "target_name": "counter", "data": ["value": 5]]])
        XCTAssertEqual((try send("k", ["method": "increment", "by": 2])["state"] as? [String: Any])?["value"] as? Int, 7)
        XCTAssertTrue((try send("k", ["method": "dance"])["message"] as? String)?.contains("counter v1 does not") == true)

        for version in 2...3 {
            try publishCounter(marker: "v\(version)")
            let log = try host.waitForLog("reloaded library")
            XCTAssertEqual(log["handed_off"] as? Int, 1)
            XCTAssertTrue((try send("k", ["method": "dance"])["message"] as? String)?.contains("counter v\(version) does not") == true,
                          "the new code answers")
            XCTAssertEqual((try send("k", ["method": "increment", "by": 1])["state"] as? [String: Any])?["value"] as? Int, 6 + version,
                           "the value survived")
        }
        // New comms and type lookups after the reloads work; the process is alive.
        host.send(json: ["msg_type": "comm_open", "content": ["comm_id": "k2", "target_name": "counter", "data": [:]]])
        XCTAssertEqual((try send("k2", ["method": "request_state"])["state"] as? [String: Any])?["value"] as? Int, 0)
        host.closeInput()
        XCTAssertEqual(host.waitForExit(), 0, host.stderrText)
    }
}

/// The sequence numbers a sender thread has used, and its stop flag.
private final class SentCounter: @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let lock = NSLock()
    private var sent = 0
    private var stopRequested = false
    private var finished = false

    /// The next sequence number (1, 2, ...).
    func next() -> Int {
        lock.lock(); defer { lock.unlock() }
        sent += 1
        return sent
    }

    var stopped: Bool {
        lock.lock(); defer { lock.unlock() }
        if stopRequested { finished = true }
        return stopRequested
    }

    /// Asks the sender to stop and waits until it has.
    func stop() {
        lock.lock(); stopRequested = true; lock.unlock()
        while true {
            lock.lock(); let done = finished; lock.unlock()
            if done { return }
            usleep(1_000)
        }
    }

    var count: Int {
        lock.lock(); defer { lock.unlock() }
        return sent
    }
}
