import XCTest
@testable import CommHost

/// Inbound frames: every message type in both dialects, and every error name the parser gives.
final class WireFrameParserTests: XCTestCase {
    private let jupyter = FrameParser(dialect: .jupyter, limits: WireLimits())
    private let shiny = FrameParser(dialect: .shinywidgets, limits: WireLimits())

    /// Parses `text` and hands the result and the frame bytes to `body`.
    private func parse(_ text: String, _ parser: FrameParser? = nil,
                       file: StaticString = #filePath, line: UInt = #line,
                       _ body: (InboundFrame, [UInt8]) -> Void = { _, _ in }) {
        let bytes = Array(text.utf8)
        WireUsualFrameTests.checkAgreement(bytes, parser ?? jupyter, file: file, line: line)
        do {
            body(try (parser ?? jupyter).parse(bytes), bytes)
        } catch {
            XCTFail("refused: \(error) for \(text)", file: file, line: line)
        }
    }

    private func text(_ range: ByteRange?, in bytes: [UInt8]) -> String? {
        range.map { String(decoding: bytes[$0.start..<$0.end], as: UTF8.self) }
    }

    /// The error parsing `text` gives (nil if it was accepted).
    private func error(_ text: String, _ parser: FrameParser? = nil) -> WireError? {
        error(bytes: Array(text.utf8), parser)
    }

    private func error(bytes: [UInt8], _ parser: FrameParser? = nil) -> WireError? {
        WireUsualFrameTests.checkAgreement(bytes, parser ?? jupyter)
        do {
            _ = try (parser ?? jupyter).parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Accepted frames

    func testCommOpenGivesIdTargetDataMetadataAndMessageId() {
        let frame = #"{"msg_type":"comm_open","header":{"msg_id":"m-1","msg_type":"comm_open"},"content":{"comm_id":"c1","target_name":"jupyter.widget","data":{"state": {"x": 1}},"target_module":null},"metadata":{"version":"2.1.0"},"buffers":["AAEC"]}"#
        parse(frame) { parsed, bytes in
            XCTAssertEqual(parsed.kind, .commOpen)
            XCTAssertEqual(parsed.commID, "c1")
            XCTAssertEqual(parsed.targetName, "jupyter.widget")
            XCTAssertEqual(self.text(parsed.data, in: bytes), #"{"state": {"x": 1}}"#)
            XCTAssertEqual(self.text(parsed.metadata, in: bytes), #"{"version":"2.1.0"}"#)
            XCTAssertEqual(parsed.buffers, [[0, 1, 2]])
            XCTAssertEqual(self.text(parsed.msgIDToken, in: bytes), #""m-1""#)
        }
    }

    func testCommOpenAcceptsAStringTargetModule() {
        parse(#"{"msg_type":"comm_open","content":{"comm_id":"c1","target_name":"t","target_module":"mod"}}"#) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commOpen)
            XCTAssertNil(parsed.data)
        }
    }

    func testCommMsgWithOnlyRequiredFieldsDefaultsTheRest() {
        parse(#"{"msg_type":"comm_msg","content":{"comm_id":"abc"}}"#) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commMsg)
            XCTAssertEqual(parsed.commID, "abc")
            XCTAssertNil(parsed.targetName)
            XCTAssertNil(parsed.data)
            XCTAssertNil(parsed.metadata)
            XCTAssertEqual(parsed.buffers, [])
            XCTAssertNil(parsed.msgIDToken)
        }
    }

    func testCommCloseGivesIdAndData() {
        parse(#"{"msg_type":"comm_close","content":{"comm_id":"abc","data":{"reason":"done"}}}"#) { parsed, bytes in
            XCTAssertEqual(parsed.kind, .commClose)
            XCTAssertEqual(parsed.commID, "abc")
            XCTAssertEqual(self.text(parsed.data, in: bytes), #"{"reason":"done"}"#)
        }
    }

    func testCommInfoRequestNeedsNoContentAndMayFilterByTarget() {
        parse(#"{"msg_type":"comm_info_request"}"#) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commInfoRequest)
            XCTAssertEqual(parsed.commID, "")
            XCTAssertNil(parsed.targetName)
        }
        parse(#"{"msg_type":"comm_info_request","content":{"target_name":"jupyter.widget"}}"#) { parsed, _ in
            XCTAssertEqual(parsed.targetName, "jupyter.widget")
        }
    }

    func testStatsRequestNeedsNoContent() {
        parse(#"{"header":{"msg_id":"s1","msg_type":"commhost_stats_request"}}"#) { parsed, bytes in
            XCTAssertEqual(parsed.kind, .statsRequest)
            XCTAssertEqual(self.text(parsed.msgIDToken, in: bytes), #""s1""#)
        }
    }

    func testMsgTypeMayBeOnlyInTheHeader() {
        parse(#"{"header":{"msg_type":"comm_msg"},"content":{"comm_id":"x"}}"#) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commMsg)
        }
    }

    func testMsgTypeMayFollowContent() {
        parse(#"{"content":{"comm_id":"x","target_name":"t"},"msg_type":"comm_open"}"#) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commOpen)
            XCTAssertEqual(parsed.targetName, "t")
        }
    }

    func testAJupyterClientFrameWithExtraMembersIsAccepted() {
        // The shape jupyter_client's Session.msg() produces, plus channel.
        let frame = #"{"header":{"msg_id":"0e9c","username":"u","session":"s","date":"2024-01-01T00:00:00Z","msg_type":"comm_msg","version":"5.3"},"msg_id":"0e9c","msg_type":"comm_msg","parent_header":{},"metadata":{},"content":{"comm_id":"w1","data":{"method":"update","state":{"value":3},"buffer_paths":[]}},"buffers":[],"channel":"shell"}"#
        parse(frame) { parsed, bytes in
            XCTAssertEqual(parsed.kind, .commMsg)
            XCTAssertEqual(parsed.commID, "w1")
            XCTAssertEqual(self.text(parsed.data, in: bytes), #"{"method":"update","state":{"value":3},"buffer_paths":[]}"#)
            XCTAssertEqual(self.text(parsed.msgIDToken, in: bytes), #""0e9c""#)
        }
    }

    func testEscapedStringsAreDecodedAndEscapedKeysRecognised() {
        parse(#"{"msg\u005ftype":"comm\u005fopen","content":{"comm_id":"a\"b\u00e9\uD83D\uDE00","target_name":"t\\n"}}"#) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commOpen)
            XCTAssertEqual(parsed.commID, "a\"bé😀")
            XCTAssertEqual(parsed.targetName, "t\\n")
        }
    }

    func testMessageIdTokenIsTheRawTokenWithItsEscapes() {
        parse(#"{"msg_type":"comm_msg","header":{"msg_id":"a\u0041\"q"},"content":{"comm_id":"x"}}"#) { parsed, bytes in
            XCTAssertEqual(self.text(parsed.msgIDToken, in: bytes), #""a\u0041\"q""#)
        }
    }

    func testWhitespaceAroundAndInsideTheFrameIsAllowed() {
        parse(" {\t\"msg_type\" : \"comm_msg\" ,\r\n \"content\" : { \"comm_id\" : \"x\" , \"data\" : { } } } ") { parsed, bytes in
            XCTAssertEqual(parsed.commID, "x")
            XCTAssertEqual(self.text(parsed.data, in: bytes), "{ }")
        }
    }

    func testAScannedFrameSaysWhetherItHoldsALineBreak() throws {
        let frames: [(String, Bool)] = [
            (#"{"msg_type":"comm_msg","content":{"comm_id":"x","data":{"s":"a\nb\r"}}}"#, false),
            ("{\"msg_type\":\"comm_msg\",\"content\":{\"comm_id\":\"x\",\"data\":{\"a\":\r1}}}", true),
            ("{\"msg_type\":\"comm_msg\",\"content\":{\"comm_id\":\"x\",\"data\":{}}}\r", true),
            ("{\"msg_type\":\"comm_msg\",\n\"content\":{\"comm_id\":\"x\"}}", true),
        ]
        for (text, expected) in frames {
            let scanned = try Array(text.utf8).withUnsafeBytes { bytes in
                Result { () throws(WireError) in try jupyter.scan(bytes) }
            }.get()
            XCTAssertEqual(scanned.hasLineBreak, expected, text)
        }
    }

    func testShinywidgetsCommSendPayloadIsACommMsg() {
        // What py-shinywidgets' ShinyComm.send in comm.ts produces (metadata undefined is dropped).
        parse(#"{"content":{"comm_id":"9f3c","data":{"method":"update","state":{"value":7},"buffer_paths":[]}},"buffers":["aGk="],"header":{}}"#, shiny) { parsed, bytes in
            XCTAssertEqual(parsed.kind, .commMsg)
            XCTAssertEqual(parsed.commID, "9f3c")
            XCTAssertEqual(self.text(parsed.data, in: bytes), #"{"method":"update","state":{"value":7},"buffer_paths":[]}"#)
            XCTAssertNil(parsed.metadata)
            XCTAssertEqual(parsed.buffers, [Array("hi".utf8)])
            XCTAssertNil(parsed.msgIDToken)
        }
    }

    func testShinywidgetsFramesWithAMsgTypeAreReadAsJupyterFrames() {
        parse(#"{"msg_type":"comm_open","content":{"comm_id":"c","target_name":"jupyter.widget"}}"#, shiny) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commOpen)
        }
        parse(#"{"header":{"msg_type":"comm_close","msg_id":"z"},"content":{"comm_id":"c"}}"#, shiny) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commClose)
        }
    }

    func testUnknownContentMembersAreSkipped() {
        parse(#"{"msg_type":"comm_msg","content":{"comm_id":"x","extra":[1,{"a":null}],"more":true}}"#) { parsed, _ in
            XCTAssertEqual(parsed.commID, "x")
        }
    }

    func testCommInfoRequestIgnoresContentMembersOfOtherMessages() {
        parse(#"{"msg_type":"comm_info_request","content":{"comm_id":5,"data":[]}}"#) { parsed, _ in
            XCTAssertEqual(parsed.kind, .commInfoRequest)
        }
    }

    // MARK: InvalidJSON / InvalidUTF8 / DepthLimit / FrameTooLong

    func testInvalidJSONIsReportedWithItsOffset() {
        XCTAssertEqual(error(#"{"msg_type":"comm_msg",}"#), WireError(.invalidJSON, "invalid JSON at byte 23: expected a string (a member name), found '}'"))
        XCTAssertEqual(error("")?.name, .invalidJSON)
        XCTAssertEqual(error("hello")?.name, .invalidJSON)
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"}"#)?.name, .invalidJSON)
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"}} {}"#)?.name, .invalidJSON)
    }

    func testInvalidJSONInsideDataIsReported() {
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x","data":{"a":01}}}"#)?.name, .invalidJSON)
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x","data":{"a":"\uDC00"}}}"#)?.name, .invalidJSON)
    }

    func testInvalidJSONWinsOverEnvelopeProblemsBeforeIt() {
        XCTAssertEqual(error(#"{"msg_type":5,"content":{"comm_id":"x"},"metadata":[1,]}"#)?.name, .invalidJSON)
    }

    func testInvalidUTF8IsReported() {
        let bytes = Array(#"{"msg_type":"comm_msg","content":{"comm_id":"x"#.utf8) + [0xC0, 0xAF] + Array(#""}}"#.utf8)
        XCTAssertEqual(error(bytes: bytes)?.name, .invalidUTF8)
    }

    func testNestingDeeperThanTheLimitIsReported() {
        let parser = FrameParser(dialect: .jupyter, limits: WireLimits(maxDepth: 4))
        // frame 1, content 2, data 3, one more object 4: at the limit.
        XCTAssertNil(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x","data":{"a":{}}}}"#, parser))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x","data":{"a":{"b":[]}}}}"#, parser)?.name, .depthLimit)
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"parent_header":[[[[]]]]}"#, parser)?.name, .depthLimit)
    }

    func testAFrameLongerThanTheLimitIsReported() {
        let parser = FrameParser(dialect: .jupyter, limits: WireLimits(maxFrameBytes: 40))
        let frame = #"{"msg_type":"comm_msg","content":{"comm_id":"x"}}"#
        XCTAssertEqual(error(frame, parser), WireError(.frameTooLong, "frame is \(frame.utf8.count) bytes; the limit is 40"))
    }

    // MARK: InvalidFrame

    func testANonObjectFrameIsInvalidFrame() {
        XCTAssertEqual(error("[1,2]"), WireError(.invalidFrame, "frame: expected a JSON object, got array"))
        XCTAssertEqual(error(#""comm_msg""#), WireError(.invalidFrame, "frame: expected a JSON object, got string"))
        XCTAssertEqual(error("null"), WireError(.invalidFrame, "frame: expected a JSON object, got null"))
    }

    func testMissingMsgTypeIsInvalidFrameInJupyterDialect() {
        XCTAssertEqual(error(#"{"content":{"comm_id":"x"}}"#), WireError(.invalidFrame, "msg_type: missing; give it at the top level or as header.msg_type"))
    }

    func testMsgTypeDisagreeingWithHeaderIsInvalidFrame() {
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","header":{"msg_type":"comm_close"},"content":{"comm_id":"x"}}"#),
                       WireError(.invalidFrame, #"msg_type: "comm_msg" disagrees with header.msg_type "comm_close"; send one message type"#))
    }

    func testMistypedEnvelopeMembersNameTheirPath() {
        XCTAssertEqual(error(#"{"msg_type":1,"content":{"comm_id":"x"}}"#), WireError(.invalidFrame, "msg_type: expected a string, got number"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","header":[],"content":{"comm_id":"x"}}"#), WireError(.invalidFrame, "header: expected an object, got array"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","header":{"msg_id":7},"content":{"comm_id":"x"}}"#), WireError(.invalidFrame, "header.msg_id: expected a string, got number"))
        XCTAssertEqual(error(#"{"header":{"msg_type":null},"content":{"comm_id":"x"}}"#), WireError(.invalidFrame, "header.msg_type: expected a string, got null"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":"x"}"#), WireError(.invalidFrame, "content: expected an object, got string"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"metadata":null}"#), WireError(.invalidFrame, "metadata: expected an object, got null"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"buffers":{}}"#), WireError(.invalidFrame, "buffers: expected an array of base64 strings, got object"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"buffers":["",true]}"#), WireError(.invalidFrame, "buffers[1]: expected a base64 string, got boolean"))
    }

    func testMissingOrMistypedContentFieldsNameTheirPath() {
        XCTAssertEqual(error(#"{"msg_type":"comm_msg"}"#), WireError(.invalidFrame, "content: missing; comm_msg needs content with comm_id"))
        XCTAssertEqual(error(#"{"msg_type":"comm_close","content":{}}"#), WireError(.invalidFrame, "content.comm_id: missing; comm_close needs it"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":5}}"#), WireError(.invalidFrame, "content.comm_id: expected a string, got number"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x","data":[]}}"#), WireError(.invalidFrame, "content.data: expected an object, got array"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x","data":null}}"#), WireError(.invalidFrame, "content.data: expected an object, got null"))
        XCTAssertEqual(error(#"{"msg_type":"comm_open","content":{"comm_id":"x"}}"#), WireError(.invalidFrame, "content.target_name: missing; comm_open needs it"))
        XCTAssertEqual(error(#"{"msg_type":"comm_open","content":{"comm_id":"","target_name":"t"}}"#), WireError(.invalidFrame, "content.comm_id: must not be empty for comm_open"))
        XCTAssertEqual(error(#"{"msg_type":"comm_open","content":{"comm_id":"x","target_name":["t"]}}"#), WireError(.invalidFrame, "content.target_name: expected a string, got array"))
        XCTAssertEqual(error(#"{"msg_type":"comm_open","content":{"comm_id":"x","target_name":"t","target_module":1}}"#), WireError(.invalidFrame, "content.target_module: expected a string or null, got number"))
        XCTAssertEqual(error(#"{"msg_type":"comm_info_request","content":{"target_name":false}}"#), WireError(.invalidFrame, "content.target_name: expected a string, got boolean"))
    }

    func testShinywidgetsPayloadWithoutCommIdIsInvalidFrame() {
        XCTAssertEqual(error(#"{"content":{"data":{}},"header":{}}"#, shiny), WireError(.invalidFrame, "content.comm_id: missing; comm_msg needs it"))
    }

    // MARK: DuplicateKey

    func testARepeatedMemberInTheFrameObjectIsDuplicateKey() {
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"a"},"content":{"comm_id":"b"}}"#), WireError(.duplicateKey, "content: member appears more than once; send each member once"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","msg_type":"comm_msg","content":{"comm_id":"a"}}"#)?.name, .duplicateKey)
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","channel":"shell","content":{"comm_id":"a"},"channel":"x"}"#), WireError(.duplicateKey, "channel: member appears more than once; send each member once"))
    }

    func testARepeatedMemberInTheHeaderIsDuplicateKey() {
        XCTAssertEqual(error(#"{"header":{"msg_type":"comm_msg","msg_type":"comm_close"},"content":{"comm_id":"a"}}"#), WireError(.duplicateKey, "header.msg_type: member appears more than once; send each member once"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","header":{"date":"1","date":"2"},"content":{"comm_id":"a"}}"#)?.evalue, "header.date: member appears more than once; send each member once")
    }

    func testARepeatedMemberInContentIsDuplicateKey() {
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"a","comm_id":"b"}}"#), WireError(.duplicateKey, "content.comm_id: member appears more than once; send each member once"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"a","x":1,"x":2}}"#)?.evalue, "content.x: member appears more than once; send each member once")
    }

    func testAKeySpelledWithEscapesStillCountsAsARepeat() {
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"a","comm\u005fid":"b"}}"#)?.name, .duplicateKey)
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"a","\u0078":1,"x":2}}"#)?.name, .duplicateKey)
    }

    func testRepeatsAmongManyUnknownMembersAreFound() {
        var members = (0..<40).map { #""k\#($0)":\#($0)"# }
        members.append(#""k3":0"#)
        let frame = #"{"msg_type":"comm_msg","content":{"comm_id":"a"},"# + members.joined(separator: ",") + "}"
        XCTAssertEqual(error(frame)?.evalue, "k3: member appears more than once; send each member once")
        members.removeLast()
        XCTAssertNil(error(#"{"msg_type":"comm_msg","content":{"comm_id":"a"},"# + members.joined(separator: ",") + "}"))
    }

    func testRepeatedKeysInsideDataAreLeftToThePlugin() {
        XCTAssertNil(error(#"{"msg_type":"comm_msg","content":{"comm_id":"a","data":{"x":1,"x":2}}}"#))
    }

    // MARK: UnknownMessageType

    func testAnUnknownMsgTypeIsUnknownMessageType() {
        XCTAssertEqual(error(#"{"msg_type":"execute_request","content":{}}"#),
                       WireError(.unknownMessageType, #"msg_type: unknown message type "execute_request"; expected comm_open, comm_msg, comm_close, comm_info_request or commhost_stats_request"#))
        XCTAssertEqual(error(#"{"header":{"msg_type":"comm_info_reply"}}"#)?.evalue.hasPrefix("header.msg_type: unknown message type"), true)
        XCTAssertEqual(error(#"{"msg_type":"error","content":{}}"#, shiny)?.name, .unknownMessageType)
    }

    // MARK: InvalidBase64

    func testABadBufferIsInvalidBase64NamingItsIndex() {
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"buffers":["AAAA","AA!A"]}"#),
                       WireError(.invalidBase64, "buffers[1]: invalid character '!' at offset 2"))
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"buffers":["AAA"]}"#)?.name, .invalidBase64)
        XCTAssertEqual(error(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"buffers":["QR=="]}"#)?.name, .invalidBase64)
    }

    func testBuffersSpelledWithEscapesAreDecoded() {
        parse(#"{"msg_type":"comm_msg","content":{"comm_id":"x"},"buffers":["aGk\u003d",""]}"#) { parsed, _ in
            XCTAssertEqual(parsed.buffers, [Array("hi".utf8), []])
        }
    }

    func testTheFirstEnvelopeProblemInDocumentOrderIsReported() {
        XCTAssertEqual(error(#"{"buffers":["!!!!"],"msg_type":7,"content":{"comm_id":"x"}}"#)?.name, .invalidBase64)
        XCTAssertEqual(error(#"{"msg_type":7,"buffers":["!!!!"],"content":{"comm_id":"x"}}"#)?.name, .invalidFrame)
    }
}
