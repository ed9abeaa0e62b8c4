import Foundation
import Glibc
import Synchronization
import XCTest

/// Many sessions at once over the Unix socket, against the real binary:
/// every reply checked, in order, nothing lost; sessions coming and going
/// while others work; plugin threads sending. `.ci/run` also runs this class
/// with ThreadSanitizer, which then instruments the host too: each test ends
/// by stopping the host and checking it exited 0 with no sanitizer report.
final class ConcurrencyTests: XCTestCase {
    /// Runs `body(index)` on `count` threads of their own at once (not a
    /// pool: every session must really be concurrent) and returns the
    /// failures they reported.
    private func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [String] {
        let failures = Mutex<[String]>([])
        let done = DispatchGroup()
        for index in 0..<count {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                do {
                    try body(index)
                } catch {
                    failures.withLock { $0.append("thread \(index): \(error)") }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        done.wait()
        return failures.withLock { $0 }
    }

    /// Stops the host and checks it shut down cleanly.
    private func assertCleanStop(_ host: SocketHost, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(host.stop(), 0, "exit status; log:\n\(host.log.suffix(4000))", file: file, line: line)
        XCTAssertFalse(host.log.contains("ThreadSanitizer"), "the host reported a data race:\n\(host.log)", file: file, line: line)
    }

    /// The payload of a reply, or a description of what is wrong with it.
    private static func check(_ frame: [String: Any], commID: String, parent: String) throws -> [String: Any] {
        guard frame["msg_type"] as? String == "comm_msg",
              (frame["parent_header"] as? [String: Any])?["msg_id"] as? String == parent,
              let content = frame["content"] as? [String: Any], content["comm_id"] as? String == commID,
              let data = content["data"] as? [String: Any]
        else { throw SocketTestFailure("expected the reply to \(parent) on \(commID), got \(frame)") }
        return data
    }

    /// Messages per comm in the 64-session test: 10 (so 1 000 per session,
    /// 64 000 in all), or `COMMHOST_CONCURRENCY_ROUNDS`: 100 makes it 640 000
    /// (about two minutes of a debug build on two cores); the
    /// ThreadSanitizer run in `.ci/run` uses fewer, since the instrumented
    /// host is several times slower.
    private static var rounds: Int {
        ProcessInfo.processInfo.environment["COMMHOST_CONCURRENCY_ROUNDS"].flatMap { Int($0) }.map { max(1, $0) } ?? 10
    }

    func testSixtyFourSessionsWithAHundredCommsEachGetEveryReplyInOrder() throws {
        try sixtyFourSessionsWithAHundredCommsEach()
    }

    private func sixtyFourSessionsWithAHundredCommsEach(isolated: Set<String> = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let sessions = 64, comms = 100, rounds = Self.rounds
        let host = try SocketHost(self, isolated: isolated)
        let failures = onThreads(sessions) { s in
            let client = try host.connect()
            // Even comms echo, odd ones count from s * 1000 + i.
            for i in 0..<comms {
                if i % 2 == 0 {
                    try client.open("c\(i)", target: SocketHost.echo)
                } else {
                    try client.open("c\(i)", target: SocketHost.counter, data: ["value": s * 1000 + i])
                }
            }
            // Each round sends one message to every comm, then reads the
            // replies: they must come back in exactly the order sent.
            for round in 0..<rounds {
                var batch = ""
                for i in 0..<comms {
                    let data = i % 2 == 0 ? "{\"s\":\(s),\"round\":\(round),\"i\":\(i)}" : "{\"method\":\"increment\",\"by\":1}"
                    batch += "{\"msg_type\":\"comm_msg\",\"header\":{\"msg_id\":\"s\(s)-r\(round)-c\(i)\"},\"content\":{\"comm_id\":\"c\(i)\",\"data\":\(data)}}\n"
                }
                if let failure = client.write(Array(batch.utf8)) { throw SocketTestFailure("session \(s): write failed: \(String(cString: strerror(failure)))") }
                for i in 0..<comms {
                    guard let line = try client.nextLine() else { throw SocketTestFailure("session \(s): the host hung up") }
                    let value = s * 1000 + i + round + 1
                    if i % 2 == 0 {
                        try Self.checkReply(line, commID: "c\(i)", parent: "s\(s)-r\(round)-c\(i)",
                                            data: ["s": s, "round": round, "i": i], written: "{\"s\":\(s),\"round\":\(round),\"i\":\(i)}")
                    } else {
                        try Self.checkReply(line, commID: "c\(i)", parent: "s\(s)-r\(round)-c\(i)",
                                            data: ["method": "update", "state": ["value": value]],
                                            written: "{\"method\":\"update\",\"state\":{\"value\":\(value)}}")
                    }
                }
            }
            client.close()
        }
        XCTAssertEqual(failures, [], file: file, line: line)
        let stats = try host.connect().stats()
        let targets = stats["targets"] as? [String: [String: Any]]
        let exchanged = sessions * comms / 2 * rounds
        for target in [SocketHost.echo, SocketHost.counter] {
            XCTAssertEqual(targets?[target]?["opened"] as? Int, sessions * comms / 2, target)
            XCTAssertEqual(targets?[target]?["messages_in"] as? Int, exchanged, target)
            XCTAssertEqual(targets?[target]?["messages_out"] as? Int, exchanged, target)
        }
        assertCleanStop(host, file: file, line: line)
    }

    /// Checks that `line` is the comm_msg replying to `parent` on `commID`
    /// with `data`. Fast path: the line holds the members as the host and
    /// the plugins write them (`written` is the data's expected text);
    /// otherwise it is parsed and compared as JSON, so only a wrong reply
    /// fails, never a change of spacing or member order.
    private static func checkReply(_ line: [UInt8], commID: String, parent: String, data: [String: Any], written: String) throws {
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("{\"msg_type\":\"comm_msg\"") && text.contains("\"parent_header\":{\"msg_id\":\"\(parent)\"}"),
           text.contains("\"content\":{\"comm_id\":\"\(commID)\",\"data\":\(written)}") {
            return
        }
        guard let frame = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw SocketTestFailure("not a JSON object: \(text)")
        }
        let got = try check(frame, commID: commID, parent: parent)
        guard NSDictionary(dictionary: got).isEqual(to: data) else {
            throw SocketTestFailure("reply to \(parent) on \(commID): expected data \(data), got \(got)")
        }
    }

    func testSessionsComingAndGoingWhileOthersWorkLeaveNoCommOpen() throws {
        try sessionsComingAndGoingWhileOthersWork()
    }

    private func sessionsComingAndGoingWhileOthersWork(isolated: Set<String> = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let host = try SocketHost(self, isolated: isolated)
        let churners = 24, workers = 8, visits = 10, commsPerVisit = 10
        let failures = onThreads(churners + workers) { t in
            if t < churners {
                // Connect, open probe comms, message them, hang up without closing.
                for visit in 0..<visits {
                    let client = try host.connect()
                    for i in 0..<commsPerVisit {
                        try client.open("t\(t)-v\(visit)-\(i)", target: SocketHost.probe)
                        try client.message("t\(t)-v\(visit)-\(i)", ["do": "echo"], msgID: "m")
                    }
                    // The first reply shows the host has the session going;
                    // what it has not read yet when the client hangs up is dropped.
                    _ = try client.nextFrame()
                    client.close()
                }
            } else {
                let client = try host.connect()
                try client.open("w", target: SocketHost.counter)
                for n in 1...300 {
                    try client.message("w", ["method": "increment", "by": 1], msgID: "w\(n)")
                    let data = try Self.check(try client.nextFrame(), commID: "w", parent: "w\(n)")
                    guard (data["state"] as? [String: Any])?["value"] as? Int == n else {
                        throw SocketTestFailure("worker \(t): increment \(n) returned \(data)")
                    }
                }
                client.close()
            }
        }
        XCTAssertEqual(failures, [], file: file, line: line)
        // Once only the asking session is left, every ended session's close
        // callbacks have run.
        let observer = try host.connect()
        XCTAssertTrue(socketWaitUntil(timeout: 60) { (try? observer.stats()["sessions"] as? Int) == 1 })
        XCTAssertEqual((try observer.stats()["open_comms"] as? [String: Int])?.values.reduce(0, +), 0)
        // Every probe comm that opened got exactly one close, with cause session_ended (3).
        let events = host.events
        let opens = events.filter { $0.hasPrefix("open ") }.map { $0.split(separator: " ")[1] }
        let closes = events.filter { $0.hasPrefix("close ") }
        XCTAssertGreaterThanOrEqual(opens.count, churners * visits, "at least each visit's first comm opened")
        XCTAssertEqual(Set(opens).count, opens.count)
        XCTAssertEqual(closes.count, opens.count, "each comm closes exactly once")
        XCTAssertEqual(Set(closes.map { $0.split(separator: " ")[1] }), Set(opens))
        XCTAssertTrue(closes.allSatisfy { $0.hasSuffix(" 3") }, "\(closes.filter { !$0.hasSuffix(" 3") })")
        assertCleanStop(host, file: file, line: line)
    }

    func testPluginThreadsSendingInManySessionsKeepEachSessionsOrder() throws {
        try pluginThreadsSendingInManySessions()
    }

    private func pluginThreadsSendingInManySessions(isolated: Set<String> = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let host = try SocketHost(self, isolated: isolated)
        let failures = onThreads(32) { s in
            let client = try host.connect()
            for i in 0..<20 { try client.open("p\(i)", target: SocketHost.probe) }
            for i in 0..<20 { try client.message("p\(i)", ["do": "thread_send"], msgID: "go\(i)") }
            // Threads of the plugin send {"t":1..3} on each comm: per comm
            // they must arrive in order, and all 60 must arrive.
            var next = [String: Int]()
            for _ in 0..<60 {
                let content = try client.nextFrame()["content"] as? [String: Any]
                guard let id = content?["comm_id"] as? String, let t = (content?["data"] as? [String: Any])?["t"] as? Int else {
                    throw SocketTestFailure("session \(s): unexpected frame \(String(describing: content))")
                }
                guard t == next[id, default: 0] + 1 else { throw SocketTestFailure("session \(s): \(id) sent t=\(t) after t=\(next[id, default: 0])") }
                next[id] = t
            }
            guard next.count == 20, next.values.allSatisfy({ $0 == 3 }) else { throw SocketTestFailure("session \(s): got \(next)") }
            client.close()
        }
        XCTAssertEqual(failures, [], file: file, line: line)
        assertCleanStop(host, file: file, line: line)
    }

    func testLateSendsFromPluginThreadsAfterManySessionsEndAreRefused() throws {
        try lateSendsFromPluginThreadsAfterManySessionsEnd()
    }

    private func lateSendsFromPluginThreadsAfterManySessionsEnd(isolated: Set<String> = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let host = try SocketHost(self, isolated: isolated)
        let failures = onThreads(16) { s in
            let client = try host.connect()
            for i in 0..<5 {
                try client.open("late-\(s)-\(i)", target: SocketHost.probe)
                try client.message("late-\(s)-\(i)", ["do": "send_after_close"], msgID: "arm")
            }
            _ = try client.stats()
            client.close()
        }
        XCTAssertEqual(failures, [], file: file, line: line)
        // COMMHOST_ECLOSED (-4) for each of the 80 late sends.
        let events = try host.waitForEvents { events in events.count { $0.hasPrefix("late-send ") } == 80 }
        XCTAssertEqual(events.filter { $0.hasPrefix("late-send ") && !$0.hasSuffix(" -4") }, [])
        assertCleanStop(host, file: file, line: line)
    }

    // MARK: The same scenarios with targets served by workers

    func testEveryProbeScenarioHoldsWithTheProbeServedByAWorker() throws {
        try sessionsComingAndGoingWhileOthersWork(isolated: [SocketHost.probe])
        try pluginThreadsSendingInManySessions(isolated: [SocketHost.probe])
        try lateSendsFromPluginThreadsAfterManySessionsEnd(isolated: [SocketHost.probe])
    }

    func testSixtyFourSessionsGetEveryReplyInOrderWithEchoAndCounterServedByWorkers() throws {
        try sixtyFourSessionsWithAHundredCommsEach(isolated: [SocketHost.echo, SocketHost.counter])
    }
}
