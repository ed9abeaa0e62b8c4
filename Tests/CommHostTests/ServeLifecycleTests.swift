import Foundation
import Glibc
import XCTest

/// How `commhost serve` ends and what it writes where (issue 3 item 4):
/// end of input, SIGINT and SIGTERM close every comm with cause shutdown,
/// run every library's deinit and exit 0; a client that stops reading ends
/// the session (cause session_ended); logs are JSON lines on stderr only;
/// `header.msg_id` comes back as `parent_header.msg_id`.
final class ServeLifecycleTests: XCTestCase {
    override class func tearDown() {
        ServeFixture.removeProbe()
        super.tearDown()
    }

    /// Opens probe comms p1 and p2 and a child comm opened by p1; returns the child's id.
    private func openThreeComms(_ host: ServeHarness) throws -> String {
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.open("p2", target: "probe.target"))
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(Frame.open("k1", target: "commhost.counter", data: #"{"value":1}"#))
        host.send(Frame.msg("p1", data: #"{"do":"open_child"}"#))
        let child = try XCTUnwrap(try host.nextFrame().commID)
        _ = try host.nextFrame()
        XCTAssertEqual(try host.openCommIDs(), [child, "e1", "k1", "p1", "p2"].sorted())
        return child
    }

    /// Asserts that each of `ids` got exactly one close callback, with
    /// `cause`, and that deinit ran once, after every close.
    private func assertClosedOnce(_ ids: [String], cause: Int, _ probe: ProbeSetup, file: StaticString = #filePath, line: UInt = #line) {
        let events = probe.events()
        let closes = events.filter { $0.hasPrefix("close ") }
        XCTAssertEqual(closes.sorted(), ids.map { "close \($0) \(cause)" }.sorted(), "events: \(events)", file: file, line: line)
        XCTAssertEqual(events.filter { $0 == "deinit" }.count, 1, "deinit runs once: \(events)", file: file, line: line)
        XCTAssertEqual(events.last, "deinit", "deinit runs after every close: \(events)", file: file, line: line)
    }

    // MARK: Ending

    func testEndOfInputClosesEveryCommWithCauseShutdownRunsDeinitAndExitsZero() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        let child = try openThreeComms(host)
        XCTAssertEqual(host.finish().count, 0, "no comm_close frames on shutdown")
        assertClosedOnce(["p1", "p2", child], cause: Cause.shutdown, probe)
    }

    func testSIGINTClosesEveryCommWithCauseShutdownRunsDeinitAndExitsZero() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        let child = try openThreeComms(host)
        host.signal(SIGINT)
        XCTAssertEqual(host.waitForExit(), 0)
        host.assertOutputRules()
        XCTAssertEqual(host.unreadFrames().count, 0, "no comm_close frames on shutdown")
        assertClosedOnce(["p1", "p2", child], cause: Cause.shutdown, probe)
    }

    func testSIGTERMClosesEveryCommWithCauseShutdownRunsDeinitAndExitsZero() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        let child = try openThreeComms(host)
        host.signal(SIGTERM)
        XCTAssertEqual(host.waitForExit(), 0)
        host.assertOutputRules()
        XCTAssertEqual(host.unreadFrames().count, 0, "no comm_close frames on shutdown")
        assertClosedOnce(["p1", "p2", child], cause: Cause.shutdown, probe)
    }

    func testSIGTERMRightAfterTheFirstReplyIsNeverLost() throws {
        // The signals are blocked from before the first reply and taken by
        // sigwait, so one sent at once must stop the host every time.
        let probe = try ServeFixture.setUp(self)
        for round in 1...20 {
            let host = try probe.serve(self)
            host.send(Frame.open("p\(round)", target: "probe.target"))
            _ = try host.sync()
            host.signal(SIGTERM)
            XCTAssertEqual(host.waitForExit(), 0, "round \(round)")
            XCTAssertTrue(host.stderrLines.contains { $0["reason"] as? String == "SIGTERM" }, "round \(round)")
        }
    }

    func testEndOfInputWithNoCommsEndsTheSessionRunsDeinitAndExitsZero() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        host.finish()
        XCTAssertEqual(probe.events(), ["session_start 1 1", "session_end 1 4", "deinit"],
                       "the stdio session started, ended with cause shutdown, then the library's deinit")
    }

    func testEveryOpenedInstanceGetsExactlyOneCloseCallbackWithItsCause() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        host.send(Frame.open("by-client", target: "probe.target"))
        host.send(Frame.open("by-plugin", target: "probe.target"))
        host.send(Frame.open("at-exit", target: "probe.target"))
        host.send(Frame.open("never", target: "probe.target", data: #"{"fail_open":true}"#))
        _ = try host.nextFrames(2)
        host.send(Frame.close("by-client"))
        host.send(Frame.close("by-client"))
        host.send(Frame.msg("by-plugin", data: #"{"do":"close_self"}"#))
        _ = try host.nextFrame()
        host.send(Frame.close("by-plugin"))
        try host.sync()
        host.finish()
        let events = probe.events()
        XCTAssertEqual(events.filter { $0.hasPrefix("close ") }.sorted(),
                       ["close at-exit \(Cause.shutdown)", "close by-client \(Cause.client)", "close by-plugin \(Cause.plugin)"],
                       "events: \(events)")
        XCTAssertEqual(events.last, "deinit")
    }

    func testClientThatStopsReadingEndsTheSessionWithCauseSessionEnded() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self, readsOutput: false)
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.open("p2", target: "probe.target"))
        // The reply cannot be written: stdout has no reader.
        host.send(Frame.infoRequest())
        probe.waitForEvent("close p1 \(Cause.sessionEnded)")
        probe.waitForEvent("close p2 \(Cause.sessionEnded)")
        host.closeInput()
        XCTAssertEqual(host.waitForExit(), 0)
        host.assertOutputRules()
        assertClosedOnce(["p1", "p2"], cause: Cause.sessionEnded, probe)
    }

    // MARK: Where output goes

    func testLogsAreJSONLinesOnStderrAndNeverOnStdout() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self, ["--log-level", "debug"])
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"log"}"#))
        host.send(Frame.open("x1", target: "no.such.target"))
        host.send("not json")
        host.send(Frame.msg("p1", data: #"{"do":"fail"}"#))
        _ = try host.nextFrames(3)
        try host.sync()
        host.finish()

        let records = host.stderrLines
        let levels = Set(records.compactMap { $0["level"] as? String })
        XCTAssertTrue(levels.isSuperset(of: ["debug", "info", "warning", "error"]), "levels logged: \(levels)")
        XCTAssertTrue(records.contains { $0["msg"] as? String == "probe log \"quoted\" \\ \nsecond line" },
                      "the plugin's text arrives whole, escaped into one line: \(host.stderrText)")
    }

    // MARK: Parent headers

    func testHeaderMsgIDComesBackAsParentHeaderOnEveryFrameWrittenWhileHandlingIt() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        host.send(Frame.open("p1", target: "probe.target", msgID: "open-1"))
        host.send(Frame.msg("p1", data: #"{"do":"send_two"}"#, msgID: "two"))
        host.send(Frame.msg("p1", data: #"{"do":"open_child"}"#, msgID: "child"))
        host.send(Frame.msg("p1", data: #"{"do":"fail"}"#, msgID: "fail"))
        host.send(Frame.open("x1", target: "no.such.target", msgID: "unknown"))
        host.send(Frame.msg("gone", data: "{}", msgID: "gone"))
        host.send(Frame.infoRequest(msgID: "info"))
        host.send(Frame.msg("p1", data: #"{"do":"close_self"}"#, msgID: "close"))
        let frames = try host.nextFrames(9)
        XCTAssertEqual(frames.map { "\($0.msgType ?? "?") \($0.parentMsgID ?? "{}")" },
                       ["comm_msg two", "comm_msg two", "comm_open child", "comm_msg child", "error fail",
                        "comm_close unknown", "comm_close gone", "comm_info_reply info", "comm_close close"])
        host.finish()
    }

    func testErrorFrameForARefusedFrameEchoesItsReadableMsgID() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        host.send(#"{"msg_type":"comm_dance","header":{"msg_id":"bad-type"},"content":{}}"#)
        host.send(#"{"msg_type":"comm_msg","header":{"msg_id":"no-id"},"content":{"data":{}}}"#)
        host.send(#"{"msg_type":"comm_msg","header":{"msg_id":"a","msg_id":"b"},"content":{"comm_id":"x"}}"#)
        host.send(#"{"msg_type":"comm_msg","header":{"msg_id":"broken"},"content":"#)
        let frames = try host.nextFrames(4)
        XCTAssertEqual(frames.map { "\($0.msgType ?? "?") \($0.parentMsgID ?? "{}")" },
                       ["error bad-type", "error no-id", "error {}", "error {}"],
                       "echoed when the frame is JSON with one msg_id; not for a repeated id or invalid JSON")
        host.finish()
    }

    func testFramesSentFromAPluginThreadHaveAnEmptyParentHeader() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        host.send(Frame.open("p1", target: "probe.target", msgID: "open-1"))
        host.send(Frame.msg("p1", data: #"{"do":"thread_send"}"#, msgID: "thread"))
        for frame in try host.nextFrames(3) {
            assertJSON(frame["parent_header"], "{}")
        }
        host.finish()
    }

    func testFramesAnsweringAFrameWithoutMsgIDHaveAnEmptyParentHeader() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(Frame.msg("e1", data: "{}"))
        assertJSON(try host.nextFrame()["parent_header"], "{}")
        host.finish()
    }

    func testOutboundMsgIDsAreUniqueAndHeaderMsgTypeMatches() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self)
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"send_two"}"#))
        host.send(Frame.msg("p1", data: #"{"do":"open_child"}"#))
        host.send("oops")
        let frames = try host.nextFrames(5) + [try host.sync()]
        let headers = frames.compactMap { $0["header"] as? [String: Any] }
        XCTAssertEqual(headers.count, frames.count)
        XCTAssertEqual(Set(headers.compactMap { $0["msg_id"] as? String }).count, frames.count, "msg ids are unique")
        XCTAssertEqual(headers.map { $0["msg_type"] as? String }, frames.map(\.msgType))
        host.finish()
    }
}
