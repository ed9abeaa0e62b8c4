import Foundation
import XCTest

/// What `commhost serve` writes, byte for byte and field by field, with the
/// example echo and counter plugins and in the shinywidgets dialect.
final class ServeWireTests: XCTestCase {
    override class func tearDown() {
        ServeFixture.removeProbe()
        super.tearDown()
    }

    // MARK: Echo and counter (the default manifest)

    func testEchoReplyCarriesDataMetadataAndBuffersByteForByte() throws {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", defaultManifest])
        let data = #"{ "b" : [1, 2.50, -0.0, 1E+2],"# + "\t" + #""a":"\u00e9\n\ud83d\ude00é" , "n":null ,"o":{}}"#
        let metadata = #"{"k" : true, "v":[ ]}"#
        let buffers = #"["AAEC","/w==",""]"#
        host.send(Frame.open("c1", target: "commhost.echo"))
        host.send(Frame.msg("c1", data: data, msgID: "m2", metadata: metadata, buffers: buffers))
        let reply = String(decoding: try host.nextLine(), as: UTF8.self)
        XCTAssertTrue(reply.contains(#""content":{"comm_id":"c1","data":\#(data)}"#), "data bytes kept: \(reply)")
        XCTAssertTrue(reply.contains(#""metadata":\#(metadata),"#), "metadata bytes kept: \(reply)")
        XCTAssertTrue(reply.hasSuffix(#","buffers":\#(buffers)}"#), "buffers kept: \(reply)")
        host.finish()
    }

    func testEchoReplyHasTheJupyterCommMsgShape() throws {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", defaultManifest])
        host.send(Frame.open("c1", target: "commhost.echo", msgID: "m1"))
        host.send(Frame.msg("c1", data: #"{"method":"update","state":{"value":3}}"#, msgID: "m2"))
        let reply = try host.nextFrame()
        XCTAssertEqual(Set(reply.keys), ["msg_type", "header", "parent_header", "metadata", "content", "buffers"])
        XCTAssertEqual(reply.msgType, "comm_msg")
        XCTAssertEqual((reply["header"] as? [String: Any])?["msg_type"] as? String, "comm_msg")
        XCTAssertNotNil((reply["header"] as? [String: Any])?["msg_id"] as? String)
        assertJSON(reply["parent_header"], #"{"msg_id":"m2"}"#)
        assertJSON(reply["metadata"], "{}")
        assertJSON(reply.content, #"{"comm_id":"c1","data":{"method":"update","state":{"value":3}}}"#)
        assertJSON(reply["buffers"], "[]")
        host.finish()
    }

    func testCounterStartsAtTheOpenValueAndAnswersIncrementWithTheNewState() throws {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", defaultManifest])
        host.send(Frame.open("k1", target: "commhost.counter", data: #"{"value":5}"#))
        host.send(Frame.msg("k1", data: #"{"method":"increment","by":2}"#))
        host.send(Frame.msg("k1", data: #"{"method":"request_state"}"#))
        let frames = try host.nextFrames(2)
        for frame in frames {
            assertFrame(frame, "comm_msg", comm: "k1")
            assertJSON(frame.data, #"{"method":"update","state":{"value":7}}"#)
        }
        host.finish()
    }

    func testCountersInOneSessionKeepSeparateValues() throws {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", defaultManifest])
        host.send(Frame.open("k1", target: "commhost.counter", data: #"{"value":10}"#))
        host.send(Frame.open("k2", target: "commhost.counter"))
        host.send(Frame.msg("k1", data: #"{"method":"increment","by":1}"#))
        host.send(Frame.msg("k2", data: #"{"method":"increment","by":1}"#))
        let frames = try host.nextFrames(2)
        assertJSON(frames[0].data, #"{"method":"update","state":{"value":11}}"#)
        assertJSON(frames[1].data, #"{"method":"update","state":{"value":1}}"#)
        host.finish()
    }

    func testMalformedFrameBetweenTwoGoodOnesLeavesBothAnswered() throws {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", defaultManifest])
        host.send(Frame.open("c1", target: "commhost.echo"))
        host.send(Frame.msg("c1", data: #"{"n":1}"#))
        host.send(#"{"msg_type":"comm_msg","content":{"comm_id":"c1","data":{"n":"#)
        host.send(Frame.msg("c1", data: #"{"n":3}"#))
        let frames = try host.nextFrames(3)
        XCTAssertEqual(frames.map(\.msgType), ["comm_msg", "error", "comm_msg"])
        assertJSON(frames[0].data, #"{"n":1}"#)
        XCTAssertEqual(frames[1].content["line"] as? Int, 3)
        assertJSON(frames[2].data, #"{"n":3}"#)
        host.finish()
    }

    func testFramesEndingInCRLFAreAccepted() throws {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", defaultManifest])
        host.write(Data((Frame.open("c1", target: "commhost.echo") + "\r\n" + Frame.msg("c1", data: #"{"crlf":1}"#) + "\r\n").utf8))
        assertJSON(try host.nextFrame().data, #"{"crlf":1}"#)
        host.finish()
    }

    func testLastFrameWithoutNewlineIsAnsweredBeforeExit() throws {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", defaultManifest])
        host.send(Frame.open("c1", target: "commhost.echo"))
        host.write(Data(Frame.msg("c1", data: #"{"last":true}"#).utf8))
        let unread = host.finish()
        XCTAssertEqual(unread.count, 1)
        assertJSON(unread.first?.data, #"{"last":true}"#)
    }

    // MARK: The shinywidgets dialect

    /// The message object inside a shinywidgets frame, after checking the
    /// frame is exactly `{"type": type, "message": "<JSON text>"}`.
    private func shinyMessage(_ frame: [String: Any], type: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(Set(frame.keys), ["type", "message"], "frame: \(ServeHarness.text(frame))", file: file, line: line)
        XCTAssertEqual(frame["type"] as? String, type, file: file, line: line)
        let text = try XCTUnwrap(frame["message"] as? String, "message is JSON text", file: file, line: line)
        let message = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], file: file, line: line)
        XCTAssertEqual(Set(message.keys), ["content", "metadata", "buffers", "ident", "parent"],
                       "message: \(text)", file: file, line: line)
        return message
    }

    /// What the shinywidgets_comm_send input carries: a comm_msg without msg_type.
    private func shinySend(_ id: String, data: String, metadata: String = "{}", buffers: String = "[]") -> String {
        #"{"content":{"comm_id":"\#(id)","data":\#(data)},"metadata":\#(metadata),"buffers":\#(buffers),"header":{}}"#
    }

    func testShinywidgetsOpenFrameHasExactlyTheShinyCommFields() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self, ["--dialect", "shinywidgets"])
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(shinySend("p1", data: #"{"do":"open_named"}"#))
        let open = try shinyMessage(try host.nextFrame(), type: "shinywidgets_comm_open")
        let content = try XCTUnwrap(open["content"] as? [String: Any])
        XCTAssertEqual(Set(content.keys), ["data", "comm_id", "target_name", "target_module", "html_deps"])
        assertJSON(content["data"], #"{"opened_by":"probe"}"#)
        XCTAssertEqual(content["comm_id"] as? String, "child-1")
        XCTAssertEqual(content["target_name"] as? String, "probe.child")
        XCTAssertTrue(content["target_module"] is NSNull, "target_module is null")
        assertJSON(content["html_deps"], "[]")
        assertJSON(open["metadata"], "{}")
        assertJSON(open["buffers"], "[]")
        XCTAssertEqual(open["ident"] as? String, "comm-child-1")
        assertJSON(open["parent"], "{}")

        let hello = try shinyMessage(try host.nextFrame(), type: "shinywidgets_comm_msg")
        assertJSON(hello["content"], #"{"data":{"child":"hello"},"comm_id":"child-1"}"#)
        host.finish()
    }

    func testShinywidgetsCommSendPayloadIsTakenAsCommMsgAndAnsweredWithExactlyTheShinyCommFields() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self, ["--dialect", "shinywidgets"])
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(shinySend("e1", data: #"{"method":"update","state":{"v":"é\"q"}}"#, metadata: #"{"m":1}"#, buffers: #"["AAEC"]"#))
        let reply = try shinyMessage(try host.nextFrame(), type: "shinywidgets_comm_msg")
        let content = try XCTUnwrap(reply["content"] as? [String: Any])
        XCTAssertEqual(Set(content.keys), ["data", "comm_id"])
        assertJSON(content["data"], #"{"method":"update","state":{"v":"é\"q"}}"#)
        XCTAssertEqual(content["comm_id"] as? String, "e1")
        assertJSON(reply["metadata"], #"{"m":1}"#)
        assertJSON(reply["buffers"], #"["AAEC"]"#)
        XCTAssertEqual(reply["ident"] as? String, "comm-e1")
        assertJSON(reply["parent"], "{}")
        host.finish()
    }

    func testShinywidgetsCloseFrameHasExactlyTheShinyCommFields() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self, ["--dialect", "shinywidgets"])
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(shinySend("p1", data: #"{"do":"close_self"}"#))
        let close = try shinyMessage(try host.nextFrame(), type: "shinywidgets_comm_close")
        assertJSON(close["content"], #"{"data":{"closing":true},"comm_id":"p1"}"#)
        assertJSON(close["metadata"], "{}")
        assertJSON(close["buffers"], "[]")
        XCTAssertEqual(close["ident"] as? String, "comm-p1")
        assertJSON(close["parent"], "{}")
        host.finish()
    }

    func testShinywidgetsMessageForAnUnknownCommIsAnsweredWithShinyClose() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self, ["--dialect", "shinywidgets"])
        host.send(shinySend("nope", data: "{}"))
        let close = try shinyMessage(try host.nextFrame(), type: "shinywidgets_comm_close")
        assertJSON(close["content"], #"{"data":{"reason":"no open comm \"nope\" in this session"},"comm_id":"nope"}"#)
        host.finish()
    }

    func testShinywidgetsDialectReportsBadInputWithAJupyterErrorFrame() throws {
        let probe = try ServeFixture.setUp(self)
        let host = try probe.serve(self, ["--dialect", "shinywidgets"])
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(#"{"content":{"data":{}}}"#)
        host.send(shinySend("e1", data: #"{"n":1}"#))
        let error = try host.nextFrame()
        assertFrame(error, "error")
        XCTAssertEqual(error.content["ename"] as? String, "InvalidFrame")
        XCTAssertEqual(error.content["line"] as? Int, 2)
        _ = try shinyMessage(try host.nextFrame(), type: "shinywidgets_comm_msg")
        host.finish()
    }
}
