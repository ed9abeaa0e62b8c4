import Foundation
import Glibc
import XCTest

/// The `workers` figures of the stats reply and of `commhost stats`, after a
/// worker crashed and was restarted, against the real binary on a socket.
final class IsolationStatsTests: XCTestCase {
    func testAfterACrashAndRestartTheStatsReplyAndTheTableShowTheWorker() throws {
        let setup = try IsolationFixture.crashSetup(self)
        let host = try SocketHost(self, directory: setup.directory, manifest: setup.manifest, socketPath: setup.directory + "/host.sock")
        let client = try host.connect()

        let before = try IsolationFixture.workerStats(try client.stats(), library: "libcrash.so")
        XCTAssertEqual(before["restarts"] as? Int, 0)
        XCTAssertEqual(before["crashes"] as? Int, 0)
        XCTAssertTrue(before["last_crash"] is NSNull, "\(before)")
        let firstPID = try XCTUnwrap(before["pid"] as? Int)
        XCTAssertGreaterThan(firstPID, 0)

        try client.open("k1", target: "crash")
        try client.message("k1", ["crash": "segv"], msgID: "segv")
        var closed = false
        while !closed {
            let frame = try client.nextFrame()
            closed = frame["msg_type"] as? String == "comm_close"
        }
        XCTAssertTrue(socketWaitUntil(timeout: 30) { host.log.contains("\"msg\":\"worker restarted\"") }, host.log)

        let content = try client.stats()
        let workers = try XCTUnwrap(content["workers"] as? [String: [String: Any]])
        let (path, after) = try XCTUnwrap(workers.first { $0.key.hasSuffix("/libcrash.so") })
        XCTAssertEqual(after["restarts"] as? Int, 1)
        XCTAssertEqual(after["crashes"] as? Int, 1)
        XCTAssertEqual(after["disabled"] as? Bool, false)
        let lastCrash = try XCTUnwrap(after["last_crash"] as? String, "\(after)")
        XCTAssertTrue(lastCrash.hasPrefix(IsolationFixture.signalPrefix(SIGSEGV)), lastCrash)
        let secondPID = try XCTUnwrap(after["pid"] as? Int)
        XCTAssertGreaterThan(secondPID, 0)
        XCTAssertNotEqual(secondPID, firstPID)
        XCTAssertEqual(Array(workers.keys), [path], "only the isolated library has a worker entry")

        let table = try TestSupport.run(TestSupport.commhostBinary, ["stats", "--socket", host.socketPath])
        XCTAssertEqual(table.status, 0, table.output)
        let lines = table.output.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.first { $0.hasPrefix("worker library") }, table.output)
        for column in ["pid", "restarts", "crashes", "disabled", "last crash"] {
            XCTAssertTrue(header.contains(column), header)
        }
        let row = try XCTUnwrap(lines.first { $0.hasPrefix(path + " ") }, table.output)
        let cells = row.dropFirst(path.count).split(separator: " ", maxSplits: 4).map(String.init)
        XCTAssertEqual(Array(cells.prefix(4)), ["\(secondPID)", "1", "1", "no"], row)
        XCTAssertEqual(cells.last?.trimmingCharacters(in: .whitespaces), lastCrash, row)

        let json = try TestSupport.run(TestSupport.commhostBinary, ["stats", "--socket", host.socketPath, "--json"])
        XCTAssertEqual(json.status, 0, json.output)
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        XCTAssertEqual(((parsed["workers"] as? [String: Any])?[path] as? [String: Any])?["crashes"] as? Int, 1)
        client.close()
        XCTAssertEqual(host.stop(), 0, host.log)
    }
}
