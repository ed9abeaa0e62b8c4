import CommHost
import Foundation
import Glibc
import XCTest

/// `commhost serve --socket` and `commhost stats`, driven over real Unix
/// sockets against the real binary: the socket file's life (permissions,
/// stale and live files, removal), sessions (one per connection, their own
/// comm tables, closed on disconnect), backpressure, shutdown and stats.
final class SocketServerTests: XCTestCase {
    private func permissions(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    private func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
    }

    /// Opens an echo comm on `client`, sends one message and checks the reply.
    private func assertEchoes(_ client: SocketClient, commID: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try client.open(commID, target: SocketHost.echo)
        try client.message(commID, ["ping": commID], msgID: "ping-\(commID)")
        let reply = try client.nextFrame()
        XCTAssertEqual(reply["msg_type"] as? String, "comm_msg", file: file, line: line)
        XCTAssertEqual((reply["parent_header"] as? [String: Any])?["msg_id"] as? String, "ping-\(commID)", file: file, line: line)
        let content = reply["content"] as? [String: Any]
        XCTAssertEqual(content?["comm_id"] as? String, commID, file: file, line: line)
        XCTAssertEqual((content?["data"] as? [String: Any])?["ping"] as? String, commID, file: file, line: line)
    }

    // MARK: The socket file

    func testSocketFileIsCreatedWithMode0600ByDefault() throws {
        let host = try SocketHost(self)
        XCTAssertTrue(isSocket(host.socketPath))
        XCTAssertEqual(try permissions(of: host.socketPath), 0o600)
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testSocketModeOptionSetsTheSocketFilePermissions() throws {
        let host = try SocketHost(self, extraArguments: ["--socket-mode", "0660"])
        XCTAssertEqual(try permissions(of: host.socketPath), 0o660)
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testSocketModeWithoutOwnerReadWriteIsAUsageError() throws {
        let directory = try TestSupport.temporaryDirectory(self)
        let result = try TestSupport.run(TestSupport.commhostBinary, ["serve", "--socket", directory + "/s.sock", "--socket-mode", "0066"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.output.contains("--socket-mode"), result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/s.sock"))
    }

    func testSocketFileIsRemovedOnShutdownAndTheExitStatusIsZero() throws {
        let host = try SocketHost(self)
        XCTAssertTrue(isSocket(host.socketPath))
        XCTAssertEqual(host.stop(SIGINT), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: host.socketPath))
    }

    func testStaleSocketFileLeftByADeadHostIsReplaced() throws {
        let directory = try TestSupport.temporaryDirectory(self)
        let path = directory + "/host.sock"
        // A socket file nobody listens on: what a killed host leaves behind.
        let stale = try UnixSocket.stream()
        try stale.bind(to: path)
        stale.close()
        XCTAssertTrue(isSocket(path))
        let manifest = try SocketHost.writeManifest(in: directory)
        let host = try SocketHost(self, directory: directory, manifest: manifest, socketPath: path)
        XCTAssertTrue(host.log.contains("replacing a stale socket file"), host.log)
        try assertEchoes(try host.connect(), commID: "after-stale")
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testLiveSocketIsRefusedWithAClearErrorAndTheLiveHostKeepsServing() throws {
        let first = try SocketHost(self)
        let manifest = first.directory + "/manifest.json"
        let second = try SocketHost(self, directory: first.directory, manifest: manifest, socketPath: first.socketPath,
                                    waitUntilListening: false, logName: "second.log")
        XCTAssertEqual(second.waitForExit(), 1)
        XCTAssertTrue(second.log.contains("another process is already listening on \(first.socketPath)"), second.log)
        XCTAssertTrue(isSocket(first.socketPath), "the refused host must not remove the live host's socket")
        try assertEchoes(try first.connect(), commID: "still-served")
        XCTAssertEqual(first.stop(), 0)
    }

    func testPathThatIsNotASocketIsRefusedAndLeftUntouched() throws {
        let directory = try TestSupport.temporaryDirectory(self)
        let path = directory + "/not-a-socket"
        try "precious".write(toFile: path, atomically: false, encoding: .utf8)
        let manifest = try SocketHost.writeManifest(in: directory)
        let host = try SocketHost(self, directory: directory, manifest: manifest, socketPath: path, waitUntilListening: false)
        XCTAssertEqual(host.waitForExit(), 1)
        XCTAssertTrue(host.log.contains("exists and is not a socket"), host.log)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "precious")
    }

    // MARK: Sessions

    func testEachConnectionSpeaksTheSameWireAsStdio() throws {
        let host = try SocketHost(self)
        let client = try host.connect()
        try assertEchoes(client, commID: "e1")
        try client.send(["msg_type": "comm_info_request", "header": ["msg_id": "info"], "content": [:]])
        let info = try client.nextFrame()
        XCTAssertEqual(info["msg_type"] as? String, "comm_info_reply")
        let comms = (info["content"] as? [String: Any])?["comms"] as? [String: Any]
        XCTAssertEqual(comms.map { Array($0.keys) }, ["e1"])
        try client.send(line: "{not json")
        XCTAssertEqual(try client.nextFrame()["msg_type"] as? String, "error")
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testTheSameCommIDInTwoSessionsNamesTwoComms() throws {
        let host = try SocketHost(self)
        let a = try host.connect(), b = try host.connect()
        try a.open("c1", target: SocketHost.counter, data: ["value": 1])
        try b.open("c1", target: SocketHost.counter, data: ["value": 100])
        for (client, expected) in [(a, 2), (b, 101)] {
            try client.message("c1", ["method": "increment", "by": 1], msgID: "inc")
            let data = (try client.nextFrame()["content"] as? [String: Any])?["data"] as? [String: Any]
            XCTAssertEqual((data?["state"] as? [String: Any])?["value"] as? Int, expected)
        }
        // Closing one session's c1 leaves the other's open.
        try a.send(["msg_type": "comm_close", "header": ["msg_id": "close"], "content": ["comm_id": "c1", "data": [:]]])
        try b.message("c1", ["method": "increment", "by": 1], msgID: "inc2")
        let data = (try b.nextFrame()["content"] as? [String: Any])?["data"] as? [String: Any]
        XCTAssertEqual((data?["state"] as? [String: Any])?["value"] as? Int, 102)
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testClientDisconnectClosesExactlyItsCommsWithCauseSessionEnded() throws {
        let host = try SocketHost(self)
        let a = try host.connect(), b = try host.connect()
        try a.open("a1", target: SocketHost.probe)
        try a.open("a2", target: SocketHost.probe)
        try b.open("b1", target: SocketHost.probe)
        try host.waitForEvents { $0.contains("open a1 0") && $0.contains("open a2 0") && $0.contains("open b1 0") }
        a.close()
        // Cause 3 is COMMHOST_CLOSE_SESSION_ENDED.
        try host.waitForEvents { $0.contains("close a1 3") && $0.contains("close a2 3") }
        let stats = try b.stats()
        XCTAssertEqual(stats["sessions"] as? Int, 1)
        XCTAssertEqual((stats["open_comms"] as? [String: Any])?[SocketHost.probe] as? Int, 1)
        XCTAssertFalse(host.events.contains { $0.hasPrefix("close b1") }, "\(host.events)")
        try b.message("b1", ["do": "echo"], msgID: "still-open")
        XCTAssertEqual((try b.nextFrame()["content"] as? [String: Any])?["comm_id"] as? String, "b1")
        XCTAssertEqual(host.stop(), 0, host.log)
        XCTAssertTrue(host.events.contains("close b1 4"), "b1 closes at shutdown (cause 4): \(host.events)")
    }

    func testPluginSendFromItsOwnThreadAfterTheSessionEndedGetsAClosedStatus() throws {
        let host = try SocketHost(self)
        let a = try host.connect(), b = try host.connect()
        try a.open("late", target: SocketHost.probe)
        try a.message("late", ["do": "send_after_close"], msgID: "arm")
        try host.waitForEvents { $0.contains("msg late 0") }
        a.close()
        // COMMHOST_ECLOSED is -4: the send is refused, the host goes on.
        try host.waitForEvents { $0.contains("late-send late -4") }
        try assertEchoes(b, commID: "after-late-send")
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testPluginThreadSendsGoOutInOrderOnTheirSession() throws {
        let host = try SocketHost(self)
        let client = try host.connect()
        try client.open("t", target: SocketHost.probe)
        try client.message("t", ["do": "thread_send"], msgID: "go")
        var seen: [Int] = []
        for _ in 0..<3 {
            let content = try client.nextFrame()["content"] as? [String: Any]
            XCTAssertEqual(content?["comm_id"] as? String, "t")
            seen.append((content?["data"] as? [String: Any])?["t"] as? Int ?? -1)
        }
        XCTAssertEqual(seen, [1, 2, 3])
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    // MARK: Backpressure

    func testConnectionBeyondMaxSessionsGetsOneErrorFrameAndIsClosedWhileOthersKeepGoing() throws {
        let host = try SocketHost(self, limits: ["max_sessions": 2])
        let a = try host.connect(), b = try host.connect()
        try assertEchoes(a, commID: "a1")
        try assertEchoes(b, commID: "b1")
        let c = try host.connect()
        let refusal = try c.nextFrame()
        XCTAssertEqual(refusal["msg_type"] as? String, "error")
        let content = refusal["content"] as? [String: Any]
        XCTAssertEqual(content?["ename"] as? String, "TooManySessions")
        XCTAssertTrue((content?["evalue"] as? String)?.contains("limits.max_sessions") == true, "\(refusal)")
        XCTAssertTrue(c.drainUntilClosed(), "the refused connection is closed")
        try assertEchoes(a, commID: "a2")
        // Once a connection has ended, a new one is served again (its
        // thread may take a moment to finish after the client hangs up).
        b.close()
        var served: SocketClient? = nil
        XCTAssertTrue(socketWaitUntil(timeout: 30) {
            guard let d = try? host.connect() else { return false }
            try? d.send(["msg_type": "comm_info_request", "header": ["msg_id": "probe"], "content": [:]])
            if (try? d.nextFrame())?["msg_type"] as? String == "comm_info_reply" {
                served = d
                return true
            }
            d.close()
            return false
        })
        try assertEchoes(try XCTUnwrap(served), commID: "d1")
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testClientThatNeverReadsIsDisconnectedAtTheBoundWhileOtherSessionsKeepGoing() throws {
        // The smallest bound these values admit: 64 KiB mark + 2 x 64 KiB frames + 64 KiB envelope.
        // Past the mark the echo plugin's replies are refused (backpressure) and each refusal is
        // answered with an error frame; the client reads none of them, so the queue reaches the bound.
        let host = try SocketHost(self, limits: ["max_outbound_bytes": 256 << 10, "max_frame_bytes": 64 << 10,
                                                 "outbound_high_water_bytes": 64 << 10])
        let steady = try host.connect()
        try assertEchoes(steady, commID: "steady-before")
        let flood = try host.connect()
        try flood.open("f", target: SocketHost.echo)
        let padding = String(repeating: "x", count: 16 << 10)
        let frame = Array("{\"msg_type\":\"comm_msg\",\"content\":{\"comm_id\":\"f\",\"data\":{\"pad\":\"\(padding)\"}}}\n".utf8)
        // Send echo requests and never read the replies, until the host
        // hangs up. The cap is a safety net far above what the bound allows.
        var written = 0
        var failure: Int32? = nil
        while failure == nil && written < 1 << 30 {
            failure = flood.write(frame)
            if failure == nil { written += frame.count }
        }
        XCTAssertNotNil(failure, "the host never disconnected a client that does not read")
        XCTAssertTrue([EPIPE, ECONNRESET].contains(failure ?? 0), "write failed with \(String(cString: strerror(failure ?? 0)))")
        XCTAssertTrue(socketWaitUntil(timeout: 30) { host.log.contains("outbound bound exceeded") }, host.log)
        XCTAssertTrue(host.log.contains("client is not reading"), host.log)
        // The other session is untouched, and the flooding one is gone.
        try assertEchoes(steady, commID: "steady-after")
        XCTAssertTrue(socketWaitUntil(timeout: 30) { (try? steady.stats()["sessions"] as? Int) == 1 })
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testPluginFloodStopsAtTheHighWaterMarkAndResumesWhenTheClientReads() throws {
        try pluginFloodStopsAtTheHighWaterMark(isolated: [])
    }

    /// The same flood from a worker: its sends under the pipelined comm_msg
    /// are answered in the worker, so the host admits those already answered
    /// past the mark and tells the worker, whose next send gets EAGAIN.
    func testAnIsolatedPluginFloodStopsAtTheHighWaterMarkAndLosesNothing() throws {
        try pluginFloodStopsAtTheHighWaterMark(isolated: [SocketHost.probe])
    }

    private func pluginFloodStopsAtTheHighWaterMark(isolated: Set<String>) throws {
        let host = try SocketHost(self, limits: ["outbound_high_water_bytes": 64 << 10], isolated: isolated)
        let client = try host.connect()
        try client.open("f", target: SocketHost.probe)
        // Sent without reading: the probe sends about 1 KB frames until the host says EAGAIN.
        try client.message("f", ["do": "flood"], msgID: "flood")
        let events = try host.waitForEvents { $0.contains { $0.hasPrefix("flood-status f ") } }
        XCTAssertTrue(events.contains("flood-status f -10"), "the flood ended with COMMHOST_EAGAIN, not a closed session: \(events)")
        let sent = try XCTUnwrap(events.first { $0.hasPrefix("flood f ") }.flatMap { Int($0.split(separator: " ")[2]) })
        XCTAssertLessThan(sent, 4096, "the mark stopped the flood before the probe's own cap")
        // Now read: every flood frame arrives, then the probe's resumed send (the
        // kernel's socket buffer may already have taken the queue down to half the mark).
        var floods = 0
        while true {
            let frame = try client.nextFrame()
            let data = (frame["content"] as? [String: Any])?["data"] as? [String: Any]
            if data?["flood"] != nil { floods += 1; continue }
            if data?["resumed"] as? Bool == true { break }
        }
        XCTAssertEqual(floods, sent, "every accepted send reached the client")
        let after = try host.waitForEvents { $0.contains { $0.hasPrefix("resumed f ") } }
        XCTAssertEqual(after.filter { $0.hasPrefix("session_writable ") }.count, 1, "one writable callback for the episode: \(after)")
        XCTAssertTrue(after.contains("resumed f 0"), "\(after)")
        XCTAssertFalse(host.log.contains("outbound bound exceeded"), "the session was never ended for it: \(host.log)")
        try assertEchoes(client, commID: "after-flood")
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testTheReplyToAFrameNearTheFrameLimitFitsTheDerivedBoundEvenWhenEscapingDoublesIt() throws {
        // max_outbound_bytes is derived (mark + 2 x frame + envelope); the
        // shinywidgets dialect escapes the message text, so every `\"` of the
        // data costs twice as much on the way out.
        let host = try SocketHost(self, limits: ["max_frame_bytes": 64 << 10, "outbound_high_water_bytes": 16 << 10],
                                  extraArguments: ["--dialect", "shinywidgets"])
        let client = try host.connect()
        try client.open("big", target: SocketHost.echo)
        let quotes = String(repeating: #"\""#, count: 32_500)
        let line = #"{"msg_type":"comm_msg","content":{"comm_id":"big","data":{"q":""# + quotes + #""}}}"#
        XCTAssertLessThan(line.utf8.count, 64 << 10, "the frame is admissible")
        XCTAssertGreaterThan(line.utf8.count, 63 << 10, "and near the limit")
        try client.send(line: line)
        let raw = try XCTUnwrap(client.nextLine())
        XCTAssertGreaterThan(raw.count, 125 << 10, "the reply is about twice the frame on the wire")
        let reply = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any])
        XCTAssertEqual(reply["type"] as? String, "shinywidgets_comm_msg")
        XCTAssertFalse(host.log.contains("outbound bound exceeded"), host.log)
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    // MARK: Shutdown

    func testShutdownWithClientsConnectedClosesEveryCommRunsDeinitAndExitsZero() throws {
        let host = try SocketHost(self)
        let reader = try host.connect()
        try reader.open("r1", target: SocketHost.probe)
        try assertEchoes(reader, commID: "r-echo")
        // This client has a comm and a backlog of replies it never reads.
        let idle = try host.connect()
        try idle.open("i1", target: SocketHost.probe)
        try idle.open("i-echo", target: SocketHost.echo)
        let padding = String(repeating: "y", count: 8 << 10)
        for n in 0..<256 {
            try idle.message("i-echo", ["pad": padding, "n": n], msgID: "m\(n)")
        }
        try host.waitForEvents { $0.contains("open r1 0") && $0.contains("open i1 0") }
        // Every echo has been sent toward the idle client: far more than its socket holds.
        XCTAssertTrue(socketWaitUntil(timeout: 60) {
            let targets = (try? reader.stats())?["targets"] as? [String: Any]
            return (targets?[SocketHost.echo] as? [String: Any])?["messages_out"] as? Int == 257
        })
        XCTAssertEqual(host.stop(SIGTERM), 0, host.log)
        XCTAssertTrue(host.log.contains("disconnecting a client that did not read"), host.log)
        // Cause 4 is COMMHOST_CLOSE_SHUTDOWN; deinit runs after every close.
        let events = host.events
        XCTAssertTrue(events.contains("close r1 4"), "\(events)")
        XCTAssertTrue(events.contains("close i1 4"), "\(events)")
        XCTAssertEqual(events.last, "deinit", "\(events)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: host.socketPath))
        XCTAssertTrue(reader.drainUntilClosed(), "the connected client sees the connection end")
    }

    // MARK: Stats

    func testStatsReplyCountsSessionsCommsMessagesHandlerTimeAndErrors() throws {
        let host = try SocketHost(self)
        let a = try host.connect(), b = try host.connect()
        for id in ["e1", "e2"] {
            try a.open(id, target: SocketHost.echo)
            for n in 0..<3 {
                try a.message(id, ["n": n], msgID: "\(id)-\(n)")
                _ = try a.nextFrame()
            }
        }
        try a.open("k", target: SocketHost.counter, data: ["value": 5])
        try a.open("e1", target: SocketHost.echo)
        XCTAssertEqual((try a.nextFrame()["content"] as? [String: Any])?["ename"] as? String, "CommExists")
        let stats = try b.stats()
        XCTAssertEqual(stats["sessions"] as? Int, 2)
        XCTAssertEqual(stats["reloads"] as? Int, 0)
        XCTAssertGreaterThan(stats["uptime_s"] as? Double ?? 0, 0)
        let open = stats["open_comms"] as? [String: Int]
        XCTAssertEqual(open, [SocketHost.echo: 2, SocketHost.counter: 1, SocketHost.probe: 0])
        XCTAssertEqual(stats["errors"] as? [String: Int], ["CommExists": 1])
        let echo = (stats["targets"] as? [String: Any])?[SocketHost.echo] as? [String: Any]
        XCTAssertEqual(echo?["opened"] as? Int, 2)
        XCTAssertEqual(echo?["messages_in"] as? Int, 6)
        XCTAssertEqual(echo?["messages_out"] as? Int, 6)
        let time = echo?["handler_time_us"] as? [String: Any]
        XCTAssertEqual(time?["count"] as? Int, 8, "2 opens and 6 messages")
        let mean = time?["mean"] as? Double ?? 0, p50 = time?["p50"] as? Double ?? 0, p99 = time?["p99"] as? Double ?? 0
        XCTAssertGreaterThan(mean, 0)
        XCTAssertGreaterThan(p50, 0)
        XCTAssertLessThanOrEqual(p50, p99)
        let counter = (stats["targets"] as? [String: Any])?[SocketHost.counter] as? [String: Any]
        XCTAssertEqual(counter?["opened"] as? Int, 1)
        XCTAssertEqual(counter?["messages_in"] as? Int, 0)
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testStatsCommandPrintsATableAndJSON() throws {
        let host = try SocketHost(self)
        let client = try host.connect()
        try assertEchoes(client, commID: "for-stats")
        let table = try TestSupport.run(TestSupport.commhostBinary, ["stats", "--socket", host.socketPath])
        XCTAssertEqual(table.status, 0, table.output)
        let lines = table.output.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.contains("2 session(s)") ?? false, table.output)
        XCTAssertTrue(lines.contains { $0.hasPrefix("target") && $0.contains("msgs in") && $0.contains("p99 µs") }, table.output)
        let echoRow = lines.first { $0.hasPrefix(SocketHost.echo + " ") }?.split(separator: " ").map(String.init)
        XCTAssertEqual(echoRow?[1...5], ["1", "1", "1", "1", "2"], "open, opened, in, out, calls: \(table.output)")
        let json = try TestSupport.run(TestSupport.commhostBinary, ["stats", "--json", "--socket", host.socketPath])
        XCTAssertEqual(json.status, 0, json.output)
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        XCTAssertEqual(object?["sessions"] as? Int, 2)
        XCTAssertNotNil((object?["targets"] as? [String: Any])?[SocketHost.counter])
        XCTAssertEqual(host.stop(), 0, host.log)
    }

    func testStatsCommandWithoutAHostSaysWhatIsWrongAndExitsOne() throws {
        let directory = try TestSupport.temporaryDirectory(self)
        let result = try TestSupport.run(TestSupport.commhostBinary, ["stats", "--socket", directory + "/nobody.sock"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.output.contains("cannot connect") && result.output.contains("nobody.sock"), result.output)
    }
}
