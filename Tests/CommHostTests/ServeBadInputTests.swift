import Foundation
import Glibc
import XCTest

/// Bad input (issue 3 item 5) against the real `commhost serve` binary: each
/// kind gets exactly one `error` frame with `ename`, `evalue` and the input
/// line number, the session goes on, and no accepted comm is lost. The
/// limits come from the manifest's `limits`, set small here.
final class ServeBadInputTests: XCTestCase {
    override class func tearDown() {
        ServeFixture.removeProbe()
        super.tearDown()
    }

    private static let limits = ["max_frame_bytes": 4096, "max_depth": 8, "max_comms_per_session": 3]

    private func serve(limits: [String: Int] = ServeBadInputTests.limits) throws -> ServeHarness {
        try ServeFixture.setUp(self, limits: limits).serve(self)
    }

    /// Opens echo comm `e1` (line 1), sends `bad` (line 2) and a message on
    /// `e1` (line 3); asserts one `error` frame named `ename` for line 2, then
    /// the echo of line 3 and `e1` still open. Returns the error's `evalue`.
    @discardableResult
    private func assertRefusedOnce(_ bad: Data, ename: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let host = try serve()
        host.send(Frame.open("e1", target: "commhost.echo"), file: file, line: line)
        host.send(bytes: bad, file: file, line: line)
        host.send(Frame.msg("e1", data: #"{"after":"bad"}"#, msgID: "m3"), file: file, line: line)

        let error = try host.nextFrame(file: file, line: line)
        assertFrame(error, "error", file: file, line: line)
        XCTAssertEqual(error.content["ename"] as? String, ename, "error: \(ServeHarness.text(error))", file: file, line: line)
        let evalue = error.content["evalue"] as? String ?? ""
        XCTAssertFalse(evalue.isEmpty, "evalue says what was wrong", file: file, line: line)
        XCTAssertEqual(error.content["line"] as? Int, 2, "the input line number", file: file, line: line)
        XCTAssertEqual(Set(error.content.keys), ["ename", "evalue", "line"], file: file, line: line)

        let echo = try host.nextFrame(file: file, line: line)
        assertFrame(echo, "comm_msg", comm: "e1", file: file, line: line)
        assertJSON(echo.data, #"{"after":"bad"}"#, file: file, line: line)
        XCTAssertEqual(echo.parentMsgID, "m3", file: file, line: line)
        XCTAssertEqual(try host.openCommIDs(file: file, line: line), ["e1"], "the accepted comm is kept", file: file, line: line)
        host.finish(file: file, line: line)
        return evalue
    }

    private func assertRefusedOnce(_ bad: String, ename: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try assertRefusedOnce(Data(bad.utf8), ename: ename, file: file, line: line)
    }

    func testInvalidJSONGetsOneErrorFrameAndTheSessionGoesOn() throws {
        try assertRefusedOnce(#"{"msg_type":"comm_msg","content":{"comm_id":"e1","data":{}}"#, ename: "InvalidJSON")
    }

    func testFrameThatIsNotAnObjectGetsOneErrorFrameAndTheSessionGoesOn() throws {
        let evalue = try assertRefusedOnce(#"["comm_msg",{"comm_id":"e1"}]"#, ename: "InvalidFrame")
        XCTAssertTrue(evalue.contains("object"), evalue)
    }

    func testUnknownMsgTypeGetsOneErrorFrameAndTheSessionGoesOn() throws {
        let evalue = try assertRefusedOnce(#"{"msg_type":"execute_request","content":{"code":"1"}}"#, ename: "UnknownMessageType")
        XCTAssertTrue(evalue.contains("execute_request"), evalue)
    }

    func testMissingCommIDGetsOneErrorFrameAndTheSessionGoesOn() throws {
        let evalue = try assertRefusedOnce(#"{"msg_type":"comm_msg","content":{"data":{"x":1}}}"#, ename: "InvalidFrame")
        XCTAssertTrue(evalue.contains("content.comm_id"), evalue)
    }

    func testMissingTargetNameOnOpenGetsOneErrorFrameAndTheSessionGoesOn() throws {
        let evalue = try assertRefusedOnce(#"{"msg_type":"comm_open","content":{"comm_id":"e2","data":{}}}"#, ename: "InvalidFrame")
        XCTAssertTrue(evalue.contains("content.target_name"), evalue)
    }

    func testMistypedCommIDGetsOneErrorFrameAndTheSessionGoesOn() throws {
        let evalue = try assertRefusedOnce(#"{"msg_type":"comm_msg","content":{"comm_id":7,"data":{}}}"#, ename: "InvalidFrame")
        XCTAssertTrue(evalue.contains("content.comm_id"), evalue)
    }

    func testDataThatIsNotAnObjectGetsOneErrorFrameAndIsNotDelivered() throws {
        let evalue = try assertRefusedOnce(#"{"msg_type":"comm_msg","content":{"comm_id":"e1","data":[1,2]}}"#, ename: "InvalidFrame")
        XCTAssertTrue(evalue.contains("content.data"), evalue)
    }

    func testMistypedMetadataGetsOneErrorFrameAndIsNotDelivered() throws {
        let evalue = try assertRefusedOnce(#"{"msg_type":"comm_msg","content":{"comm_id":"e1","data":{}},"metadata":"m"}"#,
                                           ename: "InvalidFrame")
        XCTAssertTrue(evalue.contains("metadata"), evalue)
    }

    func testInvalidBase64BufferGetsOneErrorFrameAndIsNotDelivered() throws {
        let evalue = try assertRefusedOnce(#"{"msg_type":"comm_msg","content":{"comm_id":"e1","data":{}},"buffers":["AAEC","A!=="]}"#,
                                           ename: "InvalidBase64")
        XCTAssertTrue(evalue.contains("buffers[1]"), evalue)
    }

    func testInvalidUTF8GetsOneErrorFrameAndIsNotDelivered() throws {
        var bad = Data(#"{"msg_type":"comm_msg","content":{"comm_id":"e1","data":{"s":""#.utf8)
        bad.append(contentsOf: [0xC3, 0x28])
        bad.append(contentsOf: Data(#""}}}"#.utf8))
        try assertRefusedOnce(bad, ename: "InvalidUTF8")
    }

    func testDuplicateKeyGetsOneErrorFrameAndIsNotDelivered() throws {
        let evalue = try assertRefusedOnce(#"{"msg_type":"comm_msg","content":{"comm_id":"e1","comm_id":"e2","data":{}}}"#,
                                           ename: "DuplicateKey")
        XCTAssertTrue(evalue.contains("comm_id"), evalue)
    }

    func testNestingDeeperThanTheManifestLimitGetsOneErrorFrame() throws {
        // frame 1, content 2, data 3, then six arrays: depth 9 > max_depth 8.
        try assertRefusedOnce(#"{"msg_type":"comm_msg","content":{"comm_id":"e1","data":{"a":[[[[[[]]]]]]}}}"#, ename: "DepthLimit")
    }

    func testNestingAtTheManifestLimitIsAccepted() throws {
        let host = try serve()
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(Frame.msg("e1", data: #"{"a":[[[[[]]]]]}"#))
        assertJSON(try host.nextFrame().data, #"{"a":[[[[[]]]]]}"#, "depth 8 is within max_depth 8")
        host.finish()
    }

    func testFrameLongerThanTheManifestLimitGetsOneErrorFrame() throws {
        let padding = String(repeating: "x", count: 5000)
        let evalue = try assertRefusedOnce(Frame.msg("e1", data: #"{"pad":"\#(padding)"}"#), ename: "FrameTooLong")
        XCTAssertTrue(evalue.contains("4096"), "evalue names the limit: \(evalue)")
    }

    func testOverlongFrameIsSkippedToItsNewlineWithoutBeingHeldInMemory() throws {
        let host = try serve()
        host.send(Frame.open("e1", target: "commhost.echo"))
        try host.sync()
        let before = try peakResidentBytes(of: host.pid)
        let size = 64 << 20
        let chunk = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<(size / chunk.count) { host.write(chunk) }
        host.write(Data([0x0A]))
        host.send(Frame.msg("e1", data: #"{"after":"long"}"#))

        let error = try host.nextFrame()
        XCTAssertEqual(error.content["ename"] as? String, "FrameTooLong")
        XCTAssertEqual(error.content["line"] as? Int, 3)
        assertJSON(try host.nextFrame().data, #"{"after":"long"}"#)
        let growth = try peakResidentBytes(of: host.pid) - before
        XCTAssertLessThan(growth, 16 << 20, "peak memory grew by \(growth) bytes for a \(size)-byte line; limit 4096")
        host.finish()
    }

    func testTooManyCommsGetsOneErrorFrameAndACommCloseAndKeepsTheOpenComms() throws {
        let host = try serve()
        for id in ["e1", "e2", "e3"] { host.send(Frame.open(id, target: "commhost.echo")) }
        host.send(Frame.open("e4", target: "commhost.echo", msgID: "m4"))
        let error = try host.nextFrame()
        assertFrame(error, "error")
        XCTAssertEqual(error.content["ename"] as? String, "TooManyComms")
        XCTAssertEqual(error.content["line"] as? Int, 4)
        XCTAssertEqual(error.parentMsgID, "m4")
        XCTAssertTrue((error.content["evalue"] as? String ?? "").contains("3"), "evalue names the limit: \(error)")
        let close = try host.nextFrame()
        assertFrame(close, "comm_close", comm: "e4")
        XCTAssertEqual(try host.openCommIDs(), ["e1", "e2", "e3"])
        for id in ["e1", "e2", "e3"] {
            host.send(Frame.msg(id, data: #"{"still":"\#(id)"}"#))
            assertFrame(try host.nextFrame(), "comm_msg", comm: id)
        }
        host.finish()
    }

    func testPluginOpenBeyondTheCommLimitIsRefused() throws {
        let host = try serve()
        for id in ["p1", "p2", "p3"] { host.send(Frame.open(id, target: "probe.target")) }
        host.send(Frame.msg("p1", data: #"{"do":"open_child"}"#))
        let error = try host.nextFrame()
        XCTAssertEqual(error.content["ename"] as? String, "HandlerError", "the probe returns open's COMMHOST_ELIMIT")
        XCTAssertEqual(try host.openCommIDs(), ["p1", "p2", "p3"])
        host.finish()
    }

    func testErrorLineNumberCountsEveryInputLineIncludingBlankOnes() throws {
        let host = try serve()
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send("")
        host.send("   ")
        host.send("not json")
        XCTAssertEqual(try host.nextFrame().content["line"] as? Int, 4)
        host.finish()
    }

    func testManyBadFramesInARowEachGetOneErrorAndTheSessionGoesOn() throws {
        let host = try serve()
        host.send(Frame.open("e1", target: "commhost.echo"))
        let bad = ["{", "[]", "null", #"{"msg_type":7}"#, #"{"msg_type":"nope"}"#, #"{"msg_type":"comm_close","content":{}}"#]
        for text in bad { host.send(text) }
        host.send(Frame.msg("e1", data: #"{"ok":true}"#))
        let errors = try host.nextFrames(bad.count)
        XCTAssertEqual(errors.map(\.msgType), Array(repeating: "error", count: bad.count))
        XCTAssertEqual(errors.map { $0.content["line"] as? Int }, Array(2...7))
        assertJSON(try host.nextFrame().data, #"{"ok":true}"#)
        host.finish()
    }

    /// VmHWM (peak resident set) of process `pid`, in bytes.
    private func peakResidentBytes(of pid: Int32) throws -> Int {
        let field = try XCTUnwrap(ServeHarness.procStatusField("VmHWM", pid: pid))
        let kilobytes = try XCTUnwrap(Int(field.split(separator: " ")[0]))
        return kilobytes * 1024
    }
}
