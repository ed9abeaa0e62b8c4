import Foundation
import XCTest

/// The ABI 1.0 contract as a plugin sees it through the real `commhost
/// serve` over pipes: sessions (a plugin speaks first, session_end exactly
/// once after every close), scheduling on the serialized context (timers,
/// posts from plugin threads), handles that refuse misuse, and the
/// session-end race that used to let an open through.
final class ServeContractTests: XCTestCase {
    override class func tearDown() {
        ServeFixture.removeProbe()
        super.tearDown()
    }

    func testSessionStartOpensACommBeforeAnyInputAndSessionEndRunsOnceAfterEveryClose() throws {
        let setup = try ServeFixture.setUp(self, config: #""open_on_start": true"#)
        let host = try setup.serve(self)
        let greeting = try host.nextFrame()
        assertFrame(greeting, "comm_open")
        let content = try XCTUnwrap(greeting["content"] as? [String: Any])
        XCTAssertEqual(content["target_name"] as? String, "probe.greeting")
        assertJSON(content["data"], #"{"hello":"session"}"#)
        let greetingID = try XCTUnwrap(content["comm_id"] as? String)
        XCTAssertEqual(greetingID.count, 32, "a generated id: 32 hex digits")
        // The greeting is served by handler "probe": it answers like any probe comm.
        host.send(Frame.msg(greetingID, data: #"{"do":"echo","from":"client"}"#))
        assertJSON(try host.nextFrame().data, #"{"do":"echo","from":"client"}"#)
        host.send(Frame.open("c1", target: "probe.target"))
        _ = try host.sync()
        host.closeInput()
        XCTAssertEqual(host.waitForExit(), 0)

        let events = setup.events()
        let starts = events.filter { $0.hasPrefix("session_start ") }, ends = events.filter { $0.hasPrefix("session_end ") }
        XCTAssertEqual(starts.count, 1, "\(events)")
        XCTAssertEqual(ends.count, 1, "\(events)")
        XCTAssertEqual(starts.first.map { String($0.split(separator: " ")[1]) }, ends.first.map { String($0.split(separator: " ")[1]) },
                       "start and end name the same session")
        let endIndex = try XCTUnwrap(events.firstIndex { $0.hasPrefix("session_end ") })
        let lastClose = try XCTUnwrap(events.lastIndex { $0.hasPrefix("close ") })
        XCTAssertLessThan(lastClose, endIndex, "session_end comes after every close callback: \(events)")
        XCTAssertEqual(Set(events.filter { $0.hasPrefix("close ") }), ["close \(greetingID) \(Cause.shutdown)", "close c1 \(Cause.shutdown)"])
        XCTAssertTrue(events.last == "deinit", "deinit comes last: \(events)")
    }

    func testOpenFromACloseCallbackWhileTheSessionEndsIsRefusedAndNothingGoesOut() throws {
        let setup = try ServeFixture.setUp(self)
        let host = try setup.serve(self)
        host.send(Frame.open("armed", target: "probe.target"))
        host.send(Frame.open("sibling-1", target: "probe.target"))
        host.send(Frame.open("sibling-2", target: "probe.target"))
        host.send(Frame.msg("armed", data: #"{"do":"open_in_close"}"#))
        _ = try host.sync()
        host.closeInput()
        XCTAssertEqual(host.waitForExit(), 0)
        let refused = setup.events(startingWith: "open-in-close ")
        XCTAssertEqual(refused.count, 2, "each sibling's close callback tried to open: \(setup.events())")
        XCTAssertTrue(refused.allSatisfy { $0.hasSuffix(" -4") }, "open during session end returns COMMHOST_ECLOSED: \(refused)")
        XCTAssertEqual(setup.events(startingWith: "open ").count, 3, "no comm was opened during the end")
        XCTAssertTrue(host.unreadFrames().allSatisfy { $0["msg_type"] as? String != "comm_open" }, "no comm_open went out")
        XCTAssertEqual(setup.events(startingWith: "close ").count, 3, "every opened instance closed exactly once")
    }

    func testAnExtraReleaseIsRefusedWithEHANDLEAndLoggedWithTheLibraryName() throws {
        let setup = try ServeFixture.setUp(self)
        let host = try setup.serve(self)
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.msg("c1", data: #"{"do":"double_release"}"#))
        host.send(Frame.msg("c1", data: #"{"do":"echo","after":"release"}"#))
        assertJSON(try host.nextFrame().data, #"{"do":"echo","after":"release"}"#, "the comm still serves")
        XCTAssertEqual(setup.events(startingWith: "re"), ["retain c1 0", "release-1 c1 0", "release-2 c1 -11"])
        host.finish()
        XCTAssertTrue(host.stderrLines.contains { $0["plugin"] as? String == "probe" && ($0["call"] as? String ?? "").hasPrefix("release_comm") },
                      "the refused release is logged with the library's name: \(host.stderrText)")
    }

    func testARepeatingTimerRunsOnTheCommsContextUntilItCancelsItselfAndGetsOneLastCall() throws {
        let setup = try ServeFixture.setUp(self)
        let host = try setup.serve(self)
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.msg("c1", data: #"{"do":"timer"}"#))
        let ticks = try host.nextFrames(3).map { ServeHarness.text($0.data ?? [:]) }
        XCTAssertEqual(ticks, [#"{"tick":1}"#, #"{"tick":2}"#, #"{"tick":3}"#])
        setup.waitForEvent("timer-call c1 -12")
        XCTAssertEqual(setup.events(startingWith: "timer-call "), ["timer-call c1 0", "timer-call c1 0", "timer-call c1 0", "timer-call c1 -12"])
        XCTAssertEqual(setup.events(startingWith: "timer-cancel "), ["timer-cancel c1 0"])
        host.finish()
    }

    func testATimerStillRunningWhenItsCommClosesGetsItsLastCallBeforeTheCloseCallback() throws {
        let setup = try ServeFixture.setUp(self)
        let host = try setup.serve(self)
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.msg("c1", data: #"{"do":"timer"}"#))
        host.send(Frame.close("c1"))
        _ = try host.sync()
        let events = setup.events().filter { $0.hasPrefix("timer-call ") || $0.hasPrefix("close ") }
        XCTAssertEqual(events.last, "close c1 \(Cause.client)", "\(events)")
        XCTAssertEqual(events.dropLast().last, "timer-call c1 -4", "the last call (COMMHOST_ECLOSED) precedes the close: \(events)")
        XCTAssertEqual(events.filter { $0.hasSuffix(" -4") || $0.hasSuffix(" -12") }.count, 1, "exactly one last call: \(events)")
        host.finish()
    }

    func testATaskPostedFromAPluginThreadRunsOnTheSessionAndItsSendGoesOut() throws {
        let setup = try ServeFixture.setUp(self)
        let host = try setup.serve(self)
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.msg("c1", data: #"{"do":"post"}"#))
        let posted = try host.nextFrame()
        assertFrame(posted, "comm_msg", comm: "c1")
        assertJSON(posted.data, #"{"posted":true}"#)
        setup.waitForEvent("post-status c1 0")
        XCTAssertEqual(setup.events(startingWith: "posted "), ["posted c1 0"])
        host.finish()
    }

    func testSessionDataSetAtSessionStartIsWhatSessionDataReturns() throws {
        let setup = try ServeFixture.setUp(self)
        let host = try setup.serve(self)
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.msg("c1", data: #"{"do":"session"}"#))
        let reply = try host.nextFrame()
        let data = try XCTUnwrap(reply.data)
        XCTAssertEqual(data["session_data"] as? Bool, true)
        let session = try XCTUnwrap(data["session"] as? String)
        XCTAssertEqual(setup.events(startingWith: "session_start "), ["session_start \(session) 1"])
        host.finish()
    }
}
