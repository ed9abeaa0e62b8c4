import Foundation
import XCTest

/// The comm rules (DESIGN.md "The comm rules", issue 3 item 3) and the
/// ipykernel comm-manager behaviours, checked against the real `commhost
/// serve` binary over pipes. The probe plugin records every open and close
/// (with its cause) in an events file the tests read after a sync point.
final class ServeCommRulesTests: XCTestCase {
    override class func tearDown() {
        ServeFixture.removeProbe()
        super.tearDown()
    }

    private func serve(limits: [String: Int] = [:]) throws -> (ServeHarness, ProbeSetup) {
        let setup = try ServeFixture.setUp(self, limits: limits)
        return (try setup.serve(self), setup)
    }

    // MARK: Opening

    func testClientOpenCallsTheHandlersOpenExactlyOnceAndWritesNothing() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target", msgID: "m1"))
        let reply = try host.sync()
        assertJSON(reply.content["comms"], #"{"p1":{"target_name":"probe.target"}}"#)
        XCTAssertEqual(probe.events(startingWith: "open "), ["open p1 0"])
        host.finish()
    }

    func testOpenForAnUnknownTargetIsAnsweredWithCommCloseAndRegistersNothing() throws {
        let (host, _) = try serve()
        host.send(Frame.open("x1", target: "no.such.target", msgID: "m1"))
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "x1")
        assertJSON(close.data, #"{"reason":"no target \"no.such.target\" is served here"}"#)
        XCTAssertEqual(close.parentMsgID, "m1")
        XCTAssertEqual(try host.openCommIDs(), [])
        host.finish()
        XCTAssertTrue(host.stderrLines.contains { $0["level"] as? String == "warning" && $0["target_name"] as? String == "no.such.target" },
                      "the unknown target is logged as a warning: \(host.stderrText)")
    }

    func testOpenWithTheIDOfALiveCommIsAnErrorAndLeavesTheLiveCommUntouched() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.open("c1", target: "commhost.echo", msgID: "m2"))
        let error = try host.nextFrame()
        assertFrame(error, "error")
        XCTAssertEqual(error.content["ename"] as? String, "CommExists")
        XCTAssertEqual(error.content["line"] as? Int, 2)
        XCTAssertEqual(error.parentMsgID, "m2")

        host.send(Frame.msg("c1", data: #"{"do":"echo","still":"probe"}"#))
        let echo = try host.nextFrame()
        assertFrame(echo, "comm_msg", comm: "c1")
        assertJSON(echo.data, #"{"do":"echo","still":"probe"}"#)
        let reply = try host.sync()
        assertJSON(reply.content["comms"], #"{"c1":{"target_name":"probe.target"}}"#)
        XCTAssertEqual(probe.events(startingWith: "open "), ["open c1 0"])
        XCTAssertEqual(probe.events(startingWith: "close "), [])
        host.finish()
    }

    func testOpenWithTheIDOfALiveCommForAnUnknownTargetIsAnErrorAndSendsNoCommClose() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.open("c1", target: "no.such.target", msgID: "m2"))
        let error = try host.nextFrame()
        assertFrame(error, "error")
        XCTAssertEqual(error.content["ename"] as? String, "CommExists",
                       "a comm_close for c1 would close the live comm on the client while the host keeps it")
        XCTAssertEqual(error.content["line"] as? Int, 2)
        let reply = try host.sync()
        assertJSON(reply.content["comms"], #"{"c1":{"target_name":"probe.target"}}"#)
        XCTAssertEqual(probe.events(startingWith: "close "), [])
        host.finish()
    }

    func testFailingOpenSendsCommCloseReportsTheErrorAndUnregistersTheComm() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("f1", target: "probe.target", data: #"{"fail_open":true}"#, msgID: "m1"))
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "f1")
        assertJSON(close.data, #"{"reason":"open failed: COMMHOST_EINVAL (-2): open refused"}"#)
        XCTAssertEqual(close.parentMsgID, "m1")
        let error = try host.nextFrame()
        assertFrame(error, "error")
        XCTAssertEqual(error.content["ename"] as? String, "HandlerError")
        XCTAssertEqual(error.content["line"] as? Int, 1)
        XCTAssertEqual(error.parentMsgID, "m1")
        XCTAssertTrue((error.content["evalue"] as? String ?? "").contains("open refused"), "evalue carries the plugin's text: \(error)")
        XCTAssertEqual(try host.openCommIDs(), [])

        // Unregistered: the same id opens cleanly now.
        host.send(Frame.open("f1", target: "probe.target"))
        XCTAssertEqual(try host.openCommIDs(), ["f1"])
        XCTAssertEqual(probe.events().filter { $0.contains(" f1 ") }, ["open f1 0"], "no close callback for the failed open")
        host.finish()
    }

    func testIDOfAClosedCommCanBeOpenedAgain() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.close("c1"))
        host.send(Frame.open("c1", target: "probe.target"))
        XCTAssertEqual(try host.openCommIDs(), ["c1"])
        XCTAssertEqual(probe.events().filter { $0.hasPrefix("open ") || $0.hasPrefix("close ") },
                       ["open c1 0", "close c1 \(Cause.client)", "open c1 0"])
        host.finish()
    }

    // MARK: Messages

    func testMessageForAnUnknownCommIDIsAnsweredWithCommClose() throws {
        let (host, _) = try serve()
        host.send(json: ["msg_type": "comm_msg", "header": ["msg_id": "m1"], "content": ["comm_id": "nope", "data": ["x": 1]]])
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "nope")
        assertJSON(close.data, #"{"reason":"no open comm \"nope\" in this session"}"#)
        XCTAssertEqual(close.parentMsgID, "m1")
        try host.sync()
        host.finish()
        XCTAssertTrue(host.stderrLines.contains { $0["level"] as? String == "info" && $0["comm_id"] as? String == "nope"
                                                  && ($0["msg"] as? String ?? "").contains("unknown or closed comm") },
                      "logged at info with the id: \(host.stderrText)")
    }

    func testMessageForAClosedCommIsAnsweredWithCommCloseAndNotDelivered() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.close("p1"))
        host.send(Frame.msg("p1", data: #"{"do":"echo"}"#, msgID: "m3"))
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "p1")
        assertJSON(close.data, #"{"reason":"no open comm \"p1\" in this session"}"#)
        XCTAssertEqual(close.parentMsgID, "m3")
        try host.sync()
        XCTAssertEqual(probe.events(startingWith: "msg "), [], "the handler never saw the message")
        host.finish()
    }

    func testHandlerErrorIsReportedAndTheManagerKeepsServingEveryComm() throws {
        let (host, _) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(Frame.msg("p1", data: #"{"do":"fail"}"#, msgID: "m3"))
        let error = try host.nextFrame()
        assertFrame(error, "error")
        XCTAssertEqual(error.content["ename"] as? String, "HandlerError")
        XCTAssertEqual(error.content["line"] as? Int, 3)
        XCTAssertEqual(error.parentMsgID, "m3")
        XCTAssertTrue((error.content["evalue"] as? String ?? "").contains("probe failed on purpose"), "evalue: \(error)")

        host.send(Frame.msg("p1", data: #"{"do":"echo","n":1}"#))
        assertJSON(try host.nextFrame().data, #"{"do":"echo","n":1}"#)
        host.send(Frame.msg("e1", data: #"{"n":2}"#))
        assertJSON(try host.nextFrame().data, #"{"n":2}"#)
        XCTAssertEqual(try host.openCommIDs(), ["e1", "p1"])
        host.finish()
        XCTAssertTrue(host.stderrLines.contains { $0["level"] as? String == "error" && $0["comm_id"] as? String == "p1" },
                      "the handler error is logged: \(host.stderrText)")
    }

    // MARK: Closing from the client

    func testClientCloseRunsTheCloseCallbackOnceWithCauseClientAndWritesNothing() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.close("p1", data: #"{"bye":true}"#))
        XCTAssertEqual(try host.openCommIDs(), [])
        XCTAssertEqual(probe.events(startingWith: "close "), ["close p1 \(Cause.client)"])
        host.finish()
        XCTAssertEqual(probe.events(startingWith: "close "), ["close p1 \(Cause.client)"], "shutdown does not close it again")
    }

    func testSecondClientCloseIsANoOp() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.close("p1"))
        host.send(Frame.close("p1", msgID: "m3"))
        try host.sync()
        XCTAssertEqual(probe.events(startingWith: "close "), ["close p1 \(Cause.client)"])
        host.finish()
    }

    func testClientCloseRemovesTheCommBeforeTheCloseCallbackRuns() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("w", target: "probe.target"))
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("w", data: #"{"do":"watch"}"#))
        // p1's close callback opens a comm with p1's own id, which succeeds
        // only if p1 is no longer in the session's table.
        host.send(Frame.close("p1", msgID: "m4"))
        let reopened = try host.nextFrame()
        assertFrame(reopened, "comm_open", comm: "p1")
        XCTAssertEqual(reopened.content["target_name"] as? String, "probe.child")
        try host.sync()
        let events = probe.events()
        XCTAssertTrue(events.contains("reopen p1 0"), "open with the closing comm's id succeeded: \(events)")
        XCTAssertLessThan(events.firstIndex(of: "close p1 \(Cause.client)") ?? .max, events.firstIndex(of: "reopen p1 0") ?? -1)
        host.finish()
    }

    // MARK: Closing from the plugin

    func testPluginCloseSendsOneCommCloseRefusesLaterSendsAndRunsTheCallbackWithCausePlugin() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"close_self"}"#, msgID: "m2"))
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "p1")
        assertJSON(close.data, #"{"closing":true}"#)
        XCTAssertEqual(close.parentMsgID, "m2")
        XCTAssertEqual(try host.openCommIDs(), [], "no second comm_close, no frame for the refused send, comm gone")
        let events = probe.events().filter { $0.hasSuffix(" p1 \(Cause.plugin)") || $0.contains("status p1") }
        XCTAssertEqual(events, ["close-status p1 0", "close-again-status p1 -4", "send-after-close-status p1 -4",
                                "close p1 \(Cause.plugin)"],
                       "second close and the send are refused with COMMHOST_ECLOSED; the callback runs after the current one")
        host.finish()
        XCTAssertEqual(probe.events(startingWith: "close "), ["close p1 \(Cause.plugin)"])
    }

    func testPluginCloseWithoutMessageSendsDefaultCloseDataEmptyObject() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"close_plain"}"#))
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "p1")
        assertJSON(close.data, "{}")
        assertJSON(close["metadata"], "{}")
        assertJSON(close["buffers"], "[]")
        try host.sync()
        XCTAssertEqual(probe.events(startingWith: "close"), ["close-plain-status p1 0", "close p1 \(Cause.plugin)"])
        host.finish()
    }

    func testPluginCloseFromItsOwnThreadLeavesAfterItsEarlierSendAndRunsTheCallbackOnce() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"thread_close"}"#))
        let before = try host.nextFrame()
        assertFrame(before, "comm_msg", comm: "p1")
        assertJSON(before.data, #"{"t":"before"}"#)
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "p1")
        assertJSON(close.data, #"{"by":"thread"}"#)
        probe.waitForEvent("thread-send-after-close-status p1 -4")
        probe.waitForEvent("close p1 \(Cause.plugin)")
        XCTAssertEqual(try host.openCommIDs(), [], "the refused send wrote nothing")
        XCTAssertTrue(probe.events().contains("thread-close-status p1 0"))
        host.finish()
        XCTAssertEqual(probe.events(startingWith: "close "), ["close p1 \(Cause.plugin)"])
    }

    // MARK: Sends from the plugin

    func testPluginSendsFromInsideACallbackLeaveInOrderBeforeLaterFrames() throws {
        let (host, _) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(Frame.msg("p1", data: #"{"do":"send_two"}"#))
        host.send(Frame.msg("e1", data: #"{"n":3}"#))
        let frames = try host.nextFrames(3)
        XCTAssertEqual(frames.map { ServeHarness.text($0.data ?? [:]) }, [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#])
        XCTAssertEqual(frames.map(\.commID), ["p1", "p1", "e1"])
        try host.sync()
        host.finish()
    }

    func testPluginSendsFromItsOwnThreadLeaveInTheOrderIssued() throws {
        let (host, _) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"thread_send"}"#))
        let frames = try host.nextFrames(3)
        XCTAssertEqual(frames.map { ServeHarness.text($0.data ?? [:]) }, [#"{"t":1}"#, #"{"t":2}"#, #"{"t":3}"#])
        XCTAssertEqual(frames.map(\.commID), ["p1", "p1", "p1"])
        try host.sync()
        host.finish()
    }

    func testPluginSendOfInvalidJSONIsRefusedAndWritesNothing() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"bad_json"}"#))
        XCTAssertEqual(try host.openCommIDs(), ["p1"], "nothing written, the comm stays open")
        XCTAssertTrue(probe.events().contains("bad-json-status p1 -3"), "COMMHOST_EJSON: \(probe.events())")
        host.finish()
    }

    func testSendAfterTheCloseCallbackIsRefusedAndWritesNothing() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"send_after_close"}"#))
        host.send(Frame.close("p1"))
        probe.waitForEvent("late-send p1 -4")
        try host.sync()
        host.finish()
    }

    // MARK: Comms opened by the plugin

    func testPluginOpenedCommGetsA32HexDigitIDAndItsOpenPrecedesItsMessages() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"open_child"}"#, msgID: "m2"))
        let open = try host.nextFrame()
        assertFrame(open, "comm_open")
        let id = try XCTUnwrap(open.commID)
        XCTAssertNotNil(id.wholeMatch(of: /[0-9a-f]{32}/), "generated id: \(id)")
        XCTAssertEqual(open.content["target_name"] as? String, "probe.child")
        XCTAssertTrue(open.content["target_module"] is NSNull, "target_module is null: \(open)")
        assertJSON(open.data, #"{"opened_by":"probe"}"#)
        XCTAssertEqual(open.parentMsgID, "m2")
        let hello = try host.nextFrame()
        assertFrame(hello, "comm_msg", comm: id)
        assertJSON(hello.data, #"{"child":"hello"}"#)
        let reply = try host.sync()
        assertJSON(reply.content["comms"], #"{"p1":{"target_name":"probe.target"},"\#(id)":{"target_name":"probe.child"}}"#)
        XCTAssertTrue(probe.events().contains("child \(id) 0"))
        host.finish()
    }

    func testPluginOpenedCommUsesTheIDThePluginGives() throws {
        let (host, _) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"open_named"}"#))
        assertFrame(try host.nextFrame(), "comm_open", comm: "child-1")
        assertFrame(try host.nextFrame(), "comm_msg", comm: "child-1")
        XCTAssertEqual(try host.openCommIDs(), ["child-1", "p1"])
        host.finish()
    }

    func testPluginOpenWithTheIDOfALiveCommIsRefused() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("child-1", target: "probe.target"))
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"open_named"}"#, msgID: "m3"))
        let error = try host.nextFrame()
        assertFrame(error, "error")
        XCTAssertEqual(error.content["ename"] as? String, "HandlerError", "the probe returns open's status (COMMHOST_EEXISTS)")
        XCTAssertEqual(error.parentMsgID, "m3")
        let reply = try host.sync()
        assertJSON(reply.content["comms"], #"{"child-1":{"target_name":"probe.target"},"p1":{"target_name":"probe.target"}}"#)
        XCTAssertFalse(probe.events().contains { $0.hasPrefix("child ") })
        host.finish()
    }

    func testClientCanMessageAndCloseAPluginOpenedComm() throws {
        let (host, probe) = try serve()
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"open_named"}"#))
        _ = try host.nextFrames(2)
        host.send(Frame.msg("child-1", data: #"{"do":"echo","to":"child"}"#))
        let echo = try host.nextFrame()
        assertFrame(echo, "comm_msg", comm: "child-1")
        assertJSON(echo.data, #"{"do":"echo","to":"child"}"#)
        host.send(Frame.close("child-1"))
        XCTAssertEqual(try host.openCommIDs(), ["p1"])
        XCTAssertEqual(probe.events(startingWith: "close "), ["close child-1 \(Cause.client)"])
        host.finish()
    }

    // MARK: comm_info_request

    func testCommInfoRequestWithATargetNameListsOnlyThatTargetsComms() throws {
        let (host, _) = try serve()
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(Frame.open("e2", target: "commhost.echo"))
        host.send(Frame.open("k1", target: "commhost.counter"))
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.infoRequest(target: "commhost.echo", msgID: "i1"))
        let echoes = try host.nextFrame()
        assertFrame(echoes, "comm_info_reply")
        XCTAssertEqual(echoes.parentMsgID, "i1")
        assertJSON(echoes.content, #"{"status":"ok","comms":{"e1":{"target_name":"commhost.echo"},"e2":{"target_name":"commhost.echo"}}}"#)
        host.send(Frame.infoRequest(target: "no.such.target"))
        assertJSON(try host.nextFrame().content, #"{"status":"ok","comms":{}}"#)
        host.send(Frame.infoRequest())
        assertJSON(try host.nextFrame().content["comms"], """
            {"e1":{"target_name":"commhost.echo"},"e2":{"target_name":"commhost.echo"},
             "k1":{"target_name":"commhost.counter"},"p1":{"target_name":"probe.target"}}
            """)
        host.finish()
    }
}
