import Foundation
import Glibc
import XCTest

/// Reloads of worker-served libraries through the real `commhost serve`: a
/// rebuilt isolated library hands its comms' state to a new worker, and a
/// manifest edit that moves a target into a worker hands off its comms and
/// leaves the other targets alone.
final class IsolationReloadTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
    }

    /// Compiles the hand-off fixture with `defines` beside the manifest and
    /// renames it over `name` (as linkers publish).
    private func publish(_ defines: [String], as name: String = "libtally.so") throws {
        try IsolationFixture.compile("handoff_plugin.c", into: dir, as: ".\(name).tmp", flags: defines.map { "-D\($0)" })
        XCTAssertEqual(rename("\(dir!)/.\(name).tmp", "\(dir!)/\(name)"), 0)
    }

    /// Sends `{"seq": seq}` on the tally comm `id` and returns the reply's data.
    private func tally(_ host: ServeHarness, _ id: String, seq: Int, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        host.send(Frame.msg(id, data: "{\"seq\":\(seq)}"))
        let reply = try host.nextFrame(file: file, line: line)
        assertFrame(reply, "comm_msg", comm: id, file: file, line: line)
        return try XCTUnwrap(reply.data, file: file, line: line)
    }

    private func tallyWorker(_ host: ServeHarness) throws -> [String: Any] {
        try IsolationFixture.workerStats(try IsolationFixture.stats(host), library: "libtally.so")
    }

    func testARebuiltIsolatedLibraryHandsItsStateToANewWorkerAndTheNewCodeAnswers() throws {
        try publish(["VERSION=1"])
        let tally = #"{"target_name": "tally", "library": "libtally.so", "handler": "tally", "isolation": "process"}"#
        let manifest = try IsolationFixture.writeManifest(in: dir, targets: [tally, IsolationFixture.echoTarget],
                                                          extra: #""reload": {"watch": true, "debounce_ms": 30}"#)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", manifest])
        try host.waitForLog("watching for reloads")
        host.send(Frame.open("a", target: "tally"))
        host.send(Frame.open("e", target: IsolationFixture.echo))
        XCTAssertEqual(try self.tally(host, "a", seq: 1)["value"] as? Int, 1)
        XCTAssertEqual(try self.tally(host, "a", seq: 2)["value"] as? Int, 2)
        let firstPID = try XCTUnwrap(try tallyWorker(host)["pid"] as? Int)

        try publish(["VERSION=2"])
        let log = try host.waitForLog("reloaded library")
        XCTAssertEqual(log["handed_off"] as? Int, 1)
        XCTAssertEqual(log["closed"] as? Int, 0)
        let reply = try self.tally(host, "a", seq: 3)
        XCTAssertEqual(reply["value"] as? Int, 3, "the state survived")
        XCTAssertEqual(reply["version"] as? Int, 2, "the new code answers")
        XCTAssertEqual(reply["from"] as? String, "1.0.0", "restore ran in the new worker with the old version's text")
        let worker = try tallyWorker(host)
        let secondPID = try XCTUnwrap(worker["pid"] as? Int)
        XCTAssertGreaterThan(secondPID, 0)
        XCTAssertNotEqual(secondPID, firstPID, "a new worker serves the new build")
        XCTAssertEqual(worker["restarts"] as? Int, 0, "a reload is not a restart")
        XCTAssertEqual(worker["crashes"] as? Int, 0, "the old worker's end is not a crash")
        try IsolationFixture.assertEchoes(host, "e", #"{"echo":"untouched"}"#)
        host.finish()
        XCTAssertFalse(host.stderrText.contains("worker died"), host.stderrText)
    }

    func testAManifestEditMovingATargetIntoAWorkerHandsOffItsCommAndLeavesTheOthersUntouched() throws {
        try publish([])
        try publish([], as: "libother.so")
        let tally = #"{"target_name": "tally", "library": "libtally.so", "handler": "tally""#
        let other = #"{"target_name": "other", "library": "libother.so", "handler": "tally"}"#
        let manifest = try IsolationFixture.writeManifest(in: dir, targets: [tally + "}", other, IsolationFixture.echoTarget])
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", manifest])
        try host.waitForLog("serving on stdio")
        host.send(Frame.open("t", target: "tally"))
        host.send(Frame.open("o", target: "other"))
        host.send(Frame.open("e", target: IsolationFixture.echo))
        XCTAssertEqual(try self.tally(host, "t", seq: 1)["value"] as? Int, 1)
        XCTAssertEqual(try self.tally(host, "o", seq: 1)["value"] as? Int, 1)
        let before = try XCTUnwrap(try IsolationFixture.stats(host)["workers"] as? [String: Any])
        XCTAssertTrue(before.isEmpty, "nothing is isolated yet: \(before)")

        try IsolationFixture.writeManifest(in: dir, targets: [tally + #", "isolation": "process"}"#, other, IsolationFixture.echoTarget])
        host.signal(SIGHUP)
        let log = try host.waitForLog("manifest reloaded")
        XCTAssertEqual(log["changed"] as? String, "tally", "\(log)")
        XCTAssertEqual(log["added"] as? String, "")
        XCTAssertEqual(log["removed"] as? String, "")
        XCTAssertEqual(log["handed_off"] as? Int, 1)
        XCTAssertEqual(log["closed"] as? Int, 0)

        let moved = try self.tally(host, "t", seq: 2)
        XCTAssertEqual(moved["value"] as? Int, 2, "the comm kept its state across the move")
        XCTAssertEqual(moved["from"] as? String, "1.0.0", "restored by the worker")
        let pid = try XCTUnwrap(try tallyWorker(host)["pid"] as? Int)
        XCTAssertTrue(pid > 0 && pid != Int(host.pid), "tally now runs in a worker")
        XCTAssertEqual(try self.tally(host, "o", seq: 2)["value"] as? Int, 2, "the other target's comm is untouched")
        XCTAssertTrue(try self.tally(host, "o", seq: 3)["from"] is NSNull, "and was never handed off")
        try IsolationFixture.assertEchoes(host, "e", #"{"echo":"untouched"}"#)
        XCTAssertEqual(try host.openCommIDs(), ["e", "o", "t"])
        host.finish()
    }
}
