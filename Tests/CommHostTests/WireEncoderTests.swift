import Foundation
import XCTest
@testable import CommHost

/// Outbound frames, read back with Foundation's JSON parser (fine in tests), in both dialects.
final class WireEncoderTests: XCTestCase {
    private let empty = UnsafeRawBufferPointer(start: nil, count: 0)

    /// Splits `out` into frames, checking each ends in exactly one `\n` and holds no other.
    private func frames(_ out: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        XCTAssertEqual(out.last, 0x0A, "output does not end in a newline", file: file, line: line)
        return out.split(separator: 0x0A).map { bytes in
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                XCTFail("not a JSON object: \(String(decoding: bytes, as: UTF8.self))", file: file, line: line)
                return [:]
            }
            return object
        }
    }

    private func one(_ out: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        let all = frames(out, file: file, line: line)
        XCTAssertEqual(all.count, 1, "expected one frame", file: file, line: line)
        return all.first ?? [:]
    }

    /// The `message` of a shinywidgets frame, itself parsed.
    private func message(_ frame: [String: Any], file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        guard let text = frame["message"] as? String,
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            XCTFail("message is not a JSON object text: \(frame)", file: file, line: line)
            return [:]
        }
        return object
    }

    private func withBytes<R>(_ text: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        Array(text.utf8).withUnsafeBytes(body)
    }

    // MARK: jupyter dialect

    func testJupyterCommOpenCarriesEveryField() {
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        withBytes(#"{"state":{"value":1}}"#) { data in
            withBytes(#"{"version":"2.1.0"}"#) { metadata in
                withBytes(#""parent-7""#) { parent in
                    let raw: [UInt8] = [0, 1, 2, 255]
                    raw.withUnsafeBytes { buffer in
                        encoder.commOpen(into: &out, commID: "c1", targetName: "jupyter.widget", data: data,
                                         metadata: metadata, buffers: [buffer], parent: parent)
                    }
                }
            }
        }
        let frame = one(out)
        XCTAssertEqual(frame["msg_type"] as? String, "comm_open")
        let header = frame["header"] as? [String: Any]
        XCTAssertEqual(header?["msg_type"] as? String, "comm_open")
        XCTAssertNotNil(header?["msg_id"] as? String)
        XCTAssertEqual(frame["parent_header"] as? [String: String], ["msg_id": "parent-7"])
        XCTAssertEqual(frame["metadata"] as? [String: String], ["version": "2.1.0"])
        let content = frame["content"] as? [String: Any]
        XCTAssertEqual(content?["comm_id"] as? String, "c1")
        XCTAssertEqual(content?["target_name"] as? String, "jupyter.widget")
        XCTAssertTrue(content?["target_module"] is NSNull)
        XCTAssertEqual((content?["data"] as? [String: Any])?["state"] as? [String: Int], ["value": 1])
        XCTAssertEqual(frame["buffers"] as? [String], ["AAEC/w=="])
        XCTAssertEqual(Set(frame.keys), ["msg_type", "header", "parent_header", "metadata", "content", "buffers"])
    }

    func testJupyterCommMsgAndCloseDefaultEmptyJSONToObjects() {
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        encoder.commMsg(into: &out, commID: "m", data: empty, metadata: empty, buffers: [], parent: nil)
        encoder.commClose(into: &out, commID: "m", data: empty, metadata: empty, buffers: [], parent: nil)
        let all = frames(out)
        XCTAssertEqual(all.count, 2)
        XCTAssertEqual(all.map { $0["msg_type"] as? String }, ["comm_msg", "comm_close"])
        for frame in all {
            XCTAssertEqual((frame["parent_header"] as? [String: Any])?.count, 0)
            XCTAssertEqual((frame["metadata"] as? [String: Any])?.count, 0)
            let content = frame["content"] as? [String: Any]
            XCTAssertEqual(Set(content?.keys ?? [:].keys), ["comm_id", "data"])
            XCTAssertEqual((content?["data"] as? [String: Any])?.count, 0)
            XCTAssertEqual(frame["buffers"] as? [String], [])
        }
    }

    func testMessageIdsAreUniqueAndDifferBetweenEncoders() {
        var first = FrameEncoder(dialect: .jupyter)
        var second = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        for _ in 0..<3 {
            first.commMsg(into: &out, commID: "x", data: empty, metadata: empty, buffers: [], parent: nil)
            second.commMsg(into: &out, commID: "x", data: empty, metadata: empty, buffers: [], parent: nil)
        }
        let ids = frames(out).compactMap { ($0["header"] as? [String: Any])?["msg_id"] as? String }
        XCTAssertEqual(ids.count, 6)
        XCTAssertEqual(Set(ids).count, 6)
        XCTAssertEqual(first.messageIDsIssued, 3)
    }

    func testMessageIdPrefixCanBeChosen() {
        var encoder = FrameEncoder(dialect: .jupyter, msgIDPrefix: "s\"1")
        var out: [UInt8] = []
        encoder.commMsg(into: &out, commID: "x", data: empty, metadata: empty, buffers: [], parent: nil)
        XCTAssertEqual((one(out)["header"] as? [String: Any])?["msg_id"] as? String, "s\"1-1")
    }

    func testMessageIdCountersCarryIntoNewDigitsInOrder() {
        var encoder = FrameEncoder(dialect: .jupyter, msgIDPrefix: "p")
        var out: [UInt8] = []
        for n in 1...1_100 {
            if n % 2 == 0 {
                encoder.commMsg(into: &out, commID: "x", data: empty, metadata: empty, buffers: [], parent: nil)
            } else {
                encoder.commClose(into: &out, commID: "x", data: empty, metadata: empty, buffers: [], parent: nil)
            }
        }
        let ids = frames(out).compactMap { ($0["header"] as? [String: Any])?["msg_id"] as? String }
        XCTAssertEqual(ids, (1...1_100).map { "p-\($0)" })
        XCTAssertEqual(encoder.messageIDsIssued, 1_100)
    }

    func testCommMsgIsWrittenAsCommCloseIsButForItsType() {
        var out: [UInt8] = []
        withBytes(#"{"a":[1,"é\n"]}"#) { data in
            withBytes(#"{"m":1}"#) { metadata in
                withBytes(#""parent-\"1""#) { parent in
                    for parent in [parent, nil] {
                        for oneLine in [false, true] {
                            var message = FrameEncoder(dialect: .jupyter, msgIDPrefix: "q")
                            var close = FrameEncoder(dialect: .jupyter, msgIDPrefix: "q")
                            var msgOut: [UInt8] = []
                            var closeOut: [UInt8] = []
                            message.commMsg(into: &msgOut, commID: "c\"é", data: data, metadata: metadata, buffers: [],
                                            parent: parent, dataIsOneLine: oneLine)
                            close.commClose(into: &closeOut, commID: "c\"é", data: data, metadata: metadata, buffers: [], parent: parent)
                            let closeText = String(decoding: closeOut, as: UTF8.self)
                            XCTAssertEqual(String(decoding: msgOut, as: UTF8.self), closeText.replacingOccurrences(of: "comm_close", with: "comm_msg"))
                        }
                    }
                }
            }
        }
    }

    func testDataBytesGoOutExactlyAsGiven() {
        let data = #"{ "a" : [1, 2.50, -0.0e+0] , "s": "\u00e9\n\"", "é": {} }"#
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        withBytes(data) { encoder.commMsg(into: &out, commID: "x", data: $0, metadata: $0, buffers: [], parent: nil) }
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertTrue(text.contains(#""data":"# + data + "}"), text)
        XCTAssertTrue(text.contains(#""metadata":"# + data + ","), text)
    }

    func testInboundDataRoundTripsByteForByte() throws {
        let data = #"{"x" :  "\uD83D\uDE00 caf\u00e9 é",   "n": [ 1e5, -0 ], "nested": {"k": null}}"#
        let frame = Array((#"{"msg_type":"comm_msg","content":{"comm_id":"r","data":"# + data + #"},"metadata":{"m" : 1}}"#).utf8)
        let parsed = try FrameParser(dialect: .jupyter).parse(frame)
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        frame.withUnsafeBytes { bytes in
            let dataBytes = parsed.data!.bytes(in: bytes)
            let metadataBytes = parsed.metadata!.bytes(in: bytes)
            encoder.commMsg(into: &out, commID: parsed.commID, data: dataBytes, metadata: metadataBytes, buffers: [], parent: nil)
        }
        let reparsed = try FrameParser(dialect: .jupyter).parse(Array(out.dropLast()))
        let echoed = out.withUnsafeBytes { Array(reparsed.data!.bytes(in: $0)) }
        XCTAssertEqual(String(decoding: echoed, as: UTF8.self), data)
        let echoedMetadata = out.withUnsafeBytes { Array(reparsed.metadata!.bytes(in: $0)) }
        XCTAssertEqual(String(decoding: echoedMetadata, as: UTF8.self), #"{"m" : 1}"#)
    }

    func testLineBreaksBetweenTokensOfPluginJSONDoNotSplitTheFrame() {
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        withBytes("{\n  \"a\": 1,\r\n  \"b\": \"x\\ny\"\n}") {
            encoder.commMsg(into: &out, commID: "x", data: $0, metadata: empty, buffers: [], parent: nil)
        }
        let content = one(out)["content"] as? [String: Any]
        XCTAssertEqual((content?["data"] as? [String: Any])?["b"] as? String, "x\ny")
    }

    func testStringsTheEncoderWritesAreEscaped() {
        let nasty = "q\"b\\s/c\u{1}\u{1F}t\tn\nr\r é😀"
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        encoder.commOpen(into: &out, commID: nasty, targetName: nasty, data: empty, metadata: empty, buffers: [], parent: nil)
        encoder.error(into: &out, ename: nasty, evalue: nasty, line: nil, parent: nil)
        encoder.commInfoReply(into: &out, comms: [(commID: nasty, targetName: nasty)], parent: nil)
        let all = frames(out)
        XCTAssertEqual(all.count, 3)
        let open = all[0]["content"] as? [String: Any]
        XCTAssertEqual(open?["comm_id"] as? String, nasty)
        XCTAssertEqual(open?["target_name"] as? String, nasty)
        let error = all[1]["content"] as? [String: Any]
        XCTAssertEqual(error?["ename"] as? String, nasty)
        XCTAssertEqual(error?["evalue"] as? String, nasty)
        let comms = (all[2]["content"] as? [String: Any])?["comms"] as? [String: [String: String]]
        XCTAssertEqual(comms?[nasty]?["target_name"], nasty)
    }

    func testErrorFrameCarriesEnameEvalueAndLine() {
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        withBytes(#""req-1""#) { parent in
            encoder.error(into: &out, ename: "InvalidJSON", evalue: "invalid JSON at byte 3", line: 12, parent: parent)
        }
        let frame = one(out)
        XCTAssertEqual(frame["msg_type"] as? String, "error")
        XCTAssertEqual(frame["parent_header"] as? [String: String], ["msg_id": "req-1"])
        let content = frame["content"] as? [String: Any]
        XCTAssertEqual(content?["ename"] as? String, "InvalidJSON")
        XCTAssertEqual(content?["evalue"] as? String, "invalid JSON at byte 3")
        XCTAssertEqual(content?["line"] as? Int, 12)
        XCTAssertEqual(frame["buffers"] as? [String], [])
    }

    func testErrorFrameWithoutLineLeavesLineOut() {
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        encoder.error(into: &out, ename: "E", evalue: "v", line: nil, parent: nil)
        let content = one(out)["content"] as? [String: Any]
        XCTAssertEqual(Set(content?.keys ?? [:].keys), ["ename", "evalue"])
    }

    func testCommInfoReplyListsEveryComm() {
        var encoder = FrameEncoder(dialect: .shinywidgets)
        var out: [UInt8] = []
        encoder.commInfoReply(into: &out, comms: [(commID: "a", targetName: "t1"), (commID: "b", targetName: "t2")], parent: nil)
        encoder.commInfoReply(into: &out, comms: [], parent: nil)
        let all = frames(out)
        XCTAssertEqual(all[0]["msg_type"] as? String, "comm_info_reply")
        let content = all[0]["content"] as? [String: Any]
        XCTAssertEqual(content?["status"] as? String, "ok")
        XCTAssertEqual(content?["comms"] as? [String: [String: String]], ["a": ["target_name": "t1"], "b": ["target_name": "t2"]])
        XCTAssertEqual(((all[1]["content"] as? [String: Any])?["comms"] as? [String: Any])?.count, 0)
    }

    func testRawReplyCarriesTheGivenContent() {
        var encoder = FrameEncoder(dialect: .jupyter)
        var out: [UInt8] = []
        withBytes(#"{"sessions":2,"frames_in":10}"#) { content in
            withBytes(#""q""#) { parent in
                encoder.raw(into: &out, msgType: "commhost_stats_reply", contentJSON: content, parent: parent)
            }
        }
        encoder.raw(into: &out, msgType: "empty_reply", contentJSON: empty, parent: nil)
        let all = frames(out)
        XCTAssertEqual(all[0]["msg_type"] as? String, "commhost_stats_reply")
        XCTAssertEqual((all[0]["header"] as? [String: Any])?["msg_type"] as? String, "commhost_stats_reply")
        XCTAssertEqual(all[0]["content"] as? [String: Int], ["sessions": 2, "frames_in": 10])
        XCTAssertEqual(all[0]["parent_header"] as? [String: String], ["msg_id": "q"])
        XCTAssertEqual((all[1]["content"] as? [String: Any])?.count, 0)
    }

    func testEncoderAppendsToWhatIsAlreadyInTheBuffer() {
        var encoder = FrameEncoder(dialect: .jupyter)
        var out = Array("keep\n".utf8)
        encoder.commMsg(into: &out, commID: "x", data: empty, metadata: empty, buffers: [], parent: nil)
        XCTAssertEqual(Array(out.prefix(5)), Array("keep\n".utf8))
        XCTAssertEqual(out.filter { $0 == 0x0A }.count, 2)
    }

    // MARK: shinywidgets dialect

    func testShinyCommOpenMatchesShinyCommPublishMsg() {
        var encoder = FrameEncoder(dialect: .shinywidgets)
        var out: [UInt8] = []
        withBytes(#"{"state":{"v":"a\"b"},"buffer_paths":[["x"]]}"#) { data in
            withBytes(#"{"version":"2.1.0"}"#) { metadata in
                let raw: [UInt8] = Array("hello".utf8)
                raw.withUnsafeBytes { buffer in
                    encoder.commOpen(into: &out, commID: "m\"1", targetName: "jupyter.widget", data: data,
                                     metadata: metadata, buffers: [buffer, buffer], parent: nil)
                }
            }
        }
        let frame = one(out)
        XCTAssertEqual(Set(frame.keys), ["type", "message"])
        XCTAssertEqual(frame["type"] as? String, "shinywidgets_comm_open")
        let msg = message(frame)
        XCTAssertEqual(Set(msg.keys), ["content", "metadata", "buffers", "ident", "parent"])
        let content = msg["content"] as? [String: Any]
        XCTAssertEqual(Set(content?.keys ?? [:].keys), ["data", "comm_id", "target_name", "target_module", "html_deps"])
        XCTAssertEqual(content?["comm_id"] as? String, "m\"1")
        XCTAssertEqual(content?["target_name"] as? String, "jupyter.widget")
        XCTAssertTrue(content?["target_module"] is NSNull)
        XCTAssertEqual((content?["html_deps"] as? [Any])?.count, 0)
        let data = content?["data"] as? [String: Any]
        XCTAssertEqual(data?["state"] as? [String: String], ["v": "a\"b"])
        XCTAssertEqual(data?["buffer_paths"] as? [[String]], [["x"]])
        XCTAssertEqual(msg["metadata"] as? [String: String], ["version": "2.1.0"])
        XCTAssertEqual(msg["buffers"] as? [String], ["aGVsbG8=", "aGVsbG8="])
        XCTAssertEqual(msg["ident"] as? String, "comm-m\"1")
        XCTAssertEqual((msg["parent"] as? [String: Any])?.count, 0)
    }

    func testShinyMessageKeysComeInShinyCommOrder() {
        var encoder = FrameEncoder(dialect: .shinywidgets)
        var out: [UInt8] = []
        encoder.commOpen(into: &out, commID: "i", targetName: "t", data: empty, metadata: empty, buffers: [], parent: nil)
        let text = one(out)["message"] as? String
        XCTAssertEqual(text, #"{"content":{"data":{},"comm_id":"i","target_name":"t","target_module":null,"html_deps":[]},"metadata":{},"buffers":[],"ident":"comm-i","parent":{}}"#)
    }

    func testShinyCommMsgAndCloseHaveNoOpenFields() {
        var encoder = FrameEncoder(dialect: .shinywidgets)
        var out: [UInt8] = []
        withBytes("{\n\"k\":\t\"v\\\\\"\r\n}") { data in
            encoder.commMsg(into: &out, commID: "z", data: data, metadata: empty, buffers: [], parent: nil)
            encoder.commClose(into: &out, commID: "z", data: empty, metadata: empty, buffers: [], parent: nil)
        }
        let all = frames(out)
        XCTAssertEqual(all.map { $0["type"] as? String }, ["shinywidgets_comm_msg", "shinywidgets_comm_close"])
        let msg = message(all[0])
        let content = msg["content"] as? [String: Any]
        XCTAssertEqual(Set(content?.keys ?? [:].keys), ["data", "comm_id"])
        XCTAssertEqual(content?["data"] as? [String: String], ["k": "v\\"])
        XCTAssertEqual(content?["comm_id"] as? String, "z")
        XCTAssertEqual((msg["buffers"] as? [String]), [])
        let close = message(all[1])
        let closeContent = close["content"] as? [String: Any]
        XCTAssertEqual(Set(closeContent?.keys ?? [:].keys), ["data", "comm_id"])
        XCTAssertEqual((closeContent?["data"] as? [String: Any])?.count, 0)
        XCTAssertEqual(close["ident"] as? String, "comm-z")
    }

    func testShinyMessageCarriesTheDataTextVerbatim() {
        let data = #"{ "a" : "\u00e9\t" , "b":[ 1.0 ] }"#
        var encoder = FrameEncoder(dialect: .shinywidgets)
        var out: [UInt8] = []
        withBytes(data) { encoder.commMsg(into: &out, commID: "x", data: $0, metadata: empty, buffers: [], parent: nil) }
        let text = one(out)["message"] as? String ?? ""
        XCTAssertTrue(text.hasPrefix(#"{"content":{"data":"# + data + #","comm_id":"x"}"#), text)
    }

    func testShinyParentIsAlwaysEmptyAsShinyCommSendsIt() {
        var encoder = FrameEncoder(dialect: .shinywidgets)
        var out: [UInt8] = []
        withBytes(#""a\"b""#) { parent in
            encoder.commMsg(into: &out, commID: "x", data: empty, metadata: empty, buffers: [], parent: parent)
        }
        XCTAssertEqual((message(one(out))["parent"] as? [String: Any])?.count, 0, "DESIGN.md: parent is {}")
    }

    func testShinyDialectWritesErrorsInJupyterForm() {
        var encoder = FrameEncoder(dialect: .shinywidgets)
        var out: [UInt8] = []
        encoder.error(into: &out, ename: "InvalidFrame", evalue: "x", line: 1, parent: nil)
        let frame = one(out)
        XCTAssertEqual(frame["msg_type"] as? String, "error")
        XCTAssertNil(frame["type"])
    }

    func testShinyFramesReadBackThroughTheParser() throws {
        // The relay direction: what the host writes for comm_msg, seen as a shinywidgets_comm_send
        // payload (message object) by the parser, keeps data and buffers.
        var encoder = FrameEncoder(dialect: .shinywidgets)
        var out: [UInt8] = []
        let raw: [UInt8] = [9, 8, 7]
        withBytes(#"{"k":[1,2]}"#) { data in
            raw.withUnsafeBytes { encoder.commMsg(into: &out, commID: "rt", data: data, metadata: empty, buffers: [$0], parent: nil) }
        }
        let text = Array((one(out)["message"] as? String ?? "").utf8)
        let parsed = try FrameParser(dialect: .shinywidgets).parse(text)
        XCTAssertEqual(parsed.kind, .commMsg)
        XCTAssertEqual(parsed.commID, "rt")
        XCTAssertEqual(parsed.buffers, [raw])
        XCTAssertEqual(text.withUnsafeBytes { String(decoding: parsed.data!.bytes(in: $0), as: UTF8.self) }, #"{"k":[1,2]}"#)
    }

    // MARK: Room

    func testWorstCaseEscapingFitsTheRoomTheEncoderReserves() {
        // Strings of control characters grow 6 times (7 inside the shinywidgets message), JSON of
        // quotes and backslashes doubles when nested; the encoder traps if it guessed too little.
        let controls = String(repeating: "\u{1}", count: 50)
        let json = "{\"\\\\\\\"\":\"\\\"\\\"\\\"\",\n\"\":[\"\\\\\"]}"
        for dialect in Dialect.allCases {
            var encoder = FrameEncoder(dialect: dialect, msgIDPrefix: controls)
            var out: [UInt8] = []
            withBytes(json) { data in
                withBytes(#""\"\\\"""#) { parent in
                    encoder.commOpen(into: &out, commID: controls, targetName: controls, data: data, metadata: data, buffers: [data], parent: parent)
                    encoder.commMsg(into: &out, commID: controls, data: data, metadata: data, buffers: [], parent: parent)
                    encoder.commClose(into: &out, commID: "", data: data, metadata: data, buffers: [], parent: nil)
                    encoder.error(into: &out, ename: controls, evalue: controls, line: Int.min, parent: parent)
                    encoder.commInfoReply(into: &out, comms: [(commID: controls, targetName: controls)], parent: parent)
                    encoder.raw(into: &out, msgType: controls, contentJSON: data, parent: parent)
                }
            }
            let all = frames(out)
            XCTAssertEqual(all.count, 6, "\(dialect)")
            if dialect == .shinywidgets {
                XCTAssertEqual((message(all[0])["content"] as? [String: Any])?["comm_id"] as? String, controls)
            }
            XCTAssertEqual((all[3]["content"] as? [String: Any])?["line"] as? Int, Int.min)
        }
    }
}
