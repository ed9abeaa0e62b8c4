import Foundation
import Glibc
import XCTest

/// The isolated plugin sees the same ABI: the probe fixture served by a
/// `commhost worker` (`"isolation": "process"`) through the real `commhost
/// serve` keeps the 1.0 contract the in-process ServeContractTests check:
/// sessions, timers, posts from plugin threads, plugin closes and handles
/// that refuse misuse. Its events file is written from the worker.
final class IsolationABITests: XCTestCase {
    /// A manifest binding `probe.target` to the compiled probe, isolated,
    /// with `config` members added to its config, beside the in-process echo.
    private func isolatedProbe(config: String = "") throws -> ProbeSetup {
        let directory = try TestSupport.temporaryDirectory(self)
        let events = directory + "/events.log"
        try IsolationFixture.compile("probe_plugin.c", into: directory, as: "libprobe.so", flags: ["-pthread"])
        // Written by hand: the probe reads the events path from its config text without unescaping.
        let probe = """
            {"target_name": "probe.target", "library": "libprobe.so",
             "handler": "probe", "isolation": "process",
             "config": {"events_file": \(Frame.quoted(events))\(config.isEmpty ? "" : ", " + config)}}
            """
        let manifest = try IsolationFixture.writeManifest(in: directory, targets: [probe, IsolationFixture.echoTarget])
        return ProbeSetup(manifestPath: manifest, eventsPath: events)
    }

    func testIsolatedSessionStartOpensTheGreetingBeforeAnyInputAndSessionEndRunsOnceAfterEveryClose() throws {
        let setup = try isolatedProbe(config: #""open_on_start": true"#)
        let host = try setup.serve(self)
        let greeting = try host.nextFrame()
        assertFrame(greeting, "comm_open")
        XCTAssertEqual(greeting.content["target_name"] as? String, "probe.greeting")
        assertJSON(greeting.data, #"{"hello":"session"}"#)
        let greetingID = try XCTUnwrap(greeting.commID)
        host.send(Frame.msg(greetingID, data: #"{"do":"echo","from":"client"}"#))
        assertJSON(try host.nextFrame().data, #"{"do":"echo","from":"client"}"#)
        host.send(Frame.open("c1", target: "probe.target"))
        _ = try host.sync()
        let worker = try IsolationFixture.workerStats(try IsolationFixture.stats(host), library: "libprobe.so")
        let pid = try XCTUnwrap(worker["pid"] as? Int)
        XCTAssertTrue(pid > 0 && pid != Int(host.pid), "the probe runs in a worker: \(worker)")
        host.finish()

        let events = setup.events()
        XCTAssertEqual(events.filter { $0.hasPrefix("session_start ") }.count, 1, "\(events)")
        XCTAssertEqual(events.filter { $0.hasPrefix("session_end ") }.count, 1, "\(events)")
        let endIndex = try XCTUnwrap(events.firstIndex { $0.hasPrefix("session_end ") })
        let lastClose = try XCTUnwrap(events.lastIndex { $0.hasPrefix("close ") })
        XCTAssertLessThan(lastClose, endIndex, "session_end comes after every close callback: \(events)")
        XCTAssertEqual(Set(events.filter { $0.hasPrefix("close ") }), ["close \(greetingID) \(Cause.shutdown)", "close c1 \(Cause.shutdown)"])
        XCTAssertEqual(events.last, "deinit", "\(events)")
    }

    func testIsolatedRepeatingTimerTicksUntilItCancelsItselfAndGetsOneLastCall() throws {
        let setup = try isolatedProbe()
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

    func testIsolatedTaskPostedFromAPluginThreadRunsAndItsSendGoesOut() throws {
        let setup = try isolatedProbe()
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

    func testIsolatedPluginCloseSendsOneCommCloseAndRefusesTheSecondCloseAndTheLateSend() throws {
        let setup = try isolatedProbe()
        let host = try setup.serve(self)
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"close_self"}"#, msgID: "m2"))
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "p1")
        assertJSON(close.data, #"{"closing":true}"#)
        XCTAssertEqual(close.parentMsgID, "m2")
        XCTAssertEqual(try host.openCommIDs(), [])
        let events = setup.events().filter { $0.hasSuffix(" p1 \(Cause.plugin)") || $0.contains("status p1") }
        XCTAssertEqual(events, ["close-status p1 0", "close-again-status p1 -4", "send-after-close-status p1 -4", "close p1 \(Cause.plugin)"])
        host.finish()
        XCTAssertEqual(setup.events(startingWith: "close "), ["close p1 \(Cause.plugin)"])
    }

    func testIsolatedExtraReleaseIsRefusedWithEHANDLEAndLoggedWithTheLibraryName() throws {
        let setup = try isolatedProbe()
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

    func testIsolatedPluginSendsFromItsOwnThreadsInOrderAndSessionDataIsWhatSessionStartSet() throws {
        let setup = try isolatedProbe()
        let host = try setup.serve(self)
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.msg("c1", data: #"{"do":"thread_send"}"#))
        XCTAssertEqual(try host.nextFrames(3).map { ServeHarness.text($0.data ?? [:]) }, [#"{"t":1}"#, #"{"t":2}"#, #"{"t":3}"#])
        host.send(Frame.msg("c1", data: #"{"do":"session"}"#))
        let data = try XCTUnwrap(try host.nextFrame().data)
        XCTAssertEqual(data["session_data"] as? Bool, true)
        let session = try XCTUnwrap(data["session"] as? String)
        XCTAssertEqual(setup.events(startingWith: "session_start "), ["session_start \(session) 1"])
        host.finish()
    }
    func testIsolatedCommMsgsArePipelinedYetAnsweredInOrderWithTheirOwnParentHeaders() throws {
        let setup = try isolatedProbe()
        let host = try setup.serve(self)
        host.send(Frame.open("c1", target: "probe.target"))
        host.send(Frame.open("c2", target: "probe.target"))
        // Sent in one go: the host does not wait for each callback, yet every
        // reply keeps its frame's parent header and the order of the frames.
        for n in 0..<300 {
            host.send(Frame.msg(n % 2 == 0 ? "c1" : "c2", data: #"{"do":"send_two","n":\#(n)}"#, msgID: "m\(n)"))
        }
        // A frame that is not a comm_msg (and an in-process target's) waits
        // for the pipelined callbacks before it: its answer comes after theirs.
        host.send(Frame.infoRequest(msgID: "info"))
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(Frame.msg("e1", data: #"{"echo":1}"#, msgID: "e"))
        host.send(Frame.msg("c1", data: #"{"do":"fail"}"#, msgID: "failing"))
        host.send(Frame.msg("c1", data: #"{"do":"echo","after":"fail"}"#, msgID: "after"))
        let replies = try host.nextFrames(600)
        for (index, frame) in replies.enumerated() {
            let n = index / 2
            assertFrame(frame, "comm_msg", comm: n % 2 == 0 ? "c1" : "c2")
            XCTAssertEqual(frame.parentMsgID, "m\(n)")
            assertJSON(frame.data, #"{"n":\#(index % 2 + 1)}"#)
        }
        let info = try host.nextFrame()
        XCTAssertEqual(info.msgType, "comm_info_reply")
        XCTAssertEqual(info.parentMsgID, "info")
        let echo = try host.nextFrame()
        XCTAssertEqual(echo.parentMsgID, "e")
        // A failing pipelined callback is reported as in-process: an error
        // frame with its frame's parent header and line, and the comm serves on.
        let error = try host.nextFrame()
        XCTAssertEqual(error.msgType, "error")
        XCTAssertEqual(error.parentMsgID, "failing")
        XCTAssertEqual(error.content["ename"] as? String, "HandlerError")
        XCTAssertTrue((error.content["evalue"] as? String ?? "").contains("probe failed on purpose"), "\(error)")
        XCTAssertEqual(error.content["line"] as? Int, 306)
        let after = try host.nextFrame()
        XCTAssertEqual(after.parentMsgID, "after")
        assertJSON(after.data, #"{"do":"echo","after":"fail"}"#)
        host.finish()
    }

    func testTheLastFramesBeforeEndOfInputAreAnsweredBeforeTheSessionEnds() throws {
        let setup = try isolatedProbe()
        let host = try setup.serve(self)
        host.send(Frame.open("c1", target: "probe.target"))
        for n in 0..<50 { host.send(Frame.msg("c1", data: #"{"do":"echo","n":\#(n)}"#)) }
        host.closeInput()
        let frames = try host.nextFrames(50)
        XCTAssertEqual(frames.map { ($0.data?["n"] as? Int) ?? -1 }, Array(0..<50))
        host.finish()
        XCTAssertEqual(setup.events(startingWith: "close "), ["close c1 \(Cause.shutdown)"])
    }
}
