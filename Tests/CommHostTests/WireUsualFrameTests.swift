import XCTest
@testable import CommHost

/// The parser's fast path (`UsualFrame`) against its general walk: on every frame, `scan` (fast
/// path first) and `scanGeneral` (the general walk alone) accept the same frames with the same
/// result and refuse the same frames with the same error, and whatever the fast path accepts the
/// general walk accepts identically. `WireJSONTests` runs this over the shared valid/invalid
/// JSON table, `WireFrameParserTests` over every frame it parses; here, the usual frames'
/// variations and a seeded fuzz corpus.
final class WireUsualFrameTests: XCTestCase {
    /// Checks the two paths agree on `bytes`; returns whether the fast path took the frame.
    @discardableResult
    static func checkAgreement(_ bytes: [UInt8], _ parser: FrameParser, note: @autoclosure () -> String = "",
                               file: StaticString = #filePath, line: UInt = #line) -> Bool {
        bytes.withUnsafeBytes { frame in
            let general = Result { () throws(WireError) in try parser.scanGeneral(frame) }
            let both = Result { () throws(WireError) in try parser.scan(frame) }
            let usual = frame.count <= parser.limits.maxFrameBytes
                ? UsualFrame.scan(frame, dialect: parser.dialect, maxDepth: parser.limits.maxDepth) : nil
            let text = String(decoding: bytes, as: UTF8.self)
            if frame.count <= parser.limits.maxFrameBytes {
                switch (general, both) {
                case let (.success(a), .success(b)):
                    XCTAssertEqual(a, b, "scan and the general walk disagree on \(note()) \(text)", file: file, line: line)
                case let (.failure(a), .failure(b)):
                    XCTAssertEqual(a, b, "scan and the general walk refuse differently: \(note()) \(text)", file: file, line: line)
                default:
                    XCTFail("scan \(both) but the general walk \(general): \(note()) \(text)", file: file, line: line)
                }
            }
            if let usual {
                XCTAssertEqual(try? general.get(), usual, "the fast path took what the general walk reads otherwise: \(note()) \(text)",
                               file: file, line: line)
                return true
            }
            return false
        }
    }

    private let jupyter = FrameParser(dialect: .jupyter, limits: WireLimits())
    private let shiny = FrameParser(dialect: .shinywidgets, limits: WireLimits())

    private static let usualFrames = [
        #"{"header":{"msg_id":"m100000","msg_type":"comm_msg"},"content":{"comm_id":"c1000","data":{"method":"update","state":{"value":7},"buffer_paths":[]}}}"#,
        #"{"msg_type":"comm_msg","header":{"msg_id":"m1","msg_type":"comm_msg"},"content":{"comm_id":"c","data":{}},"metadata":{},"buffers":[]}"#,
        #"{"msg_type":"comm_open","header":{"msg_id":"o0","msg_type":"comm_open"},"content":{"comm_id":"c1000","target_name":"commhost.echo","data":{}},"metadata":{}}"#,
        #"{"msg_type":"comm_open","content":{"comm_id":"x","target_name":"t","target_module":null,"data":{"a":[1,2.5e3,true,false,null]}}}"#,
        #"{"msg_type":"comm_open","content":{"comm_id":"x","target_name":"t","target_module":"m"}}"#,
        #"{"msg_type":"comm_close","content":{"comm_id":"c\u0031","data":{"k":"\ud83d\ude00 é"}},"metadata":{"m":{"n":[]}}}"#,
        #"{"msg_type":"comm_msg","content":{"comm_id":"c","data":{"method":"update"}},"buffers":["AAAA","QUJD",""]}"#,
        #"{"content":{"data":{"x":1},"comm_id":"c"},"header":{"msg_type":"comm_msg","msg_id":"\"q\""},"msg_type":"comm_msg"}"#,
        #"{"content":{"comm_id":"c","data":{"x":1}},"metadata":{},"buffers":[],"header":{}}"#,
        " { \"msg_type\" : \"comm_msg\" ,\t\"content\" : { \"comm_id\" : \"c\" , \"data\" : { \"v\" : [ 1 , 2 ] } } } ",
        "{\"msg_type\":\"comm_msg\",\r\n\"content\":{\"comm_id\":\"c\",\"data\":{\"v\":\n1}}}",
        #"{"msg_type":"comm_msg","content":{"comm_id":"c","data":{},"target_name":5,"target_module":[1]}}"#,
        // The widget front end's order, compared as words, and its near misses.
        "{\"header\":{\"msg_id\":\"m1\",\"msg_type\":\"comm_msg\"},\"content\":{\"comm_id\":\"c1000\",\"data\":{\"v\":\r\n1}}}",
        #"{"header":{"msg_id":"m\"1\u0041","msg_type":"comm_msg"},"content":{"comm_id":"c\u0031é","data":{"method":"update","state":{}}}}"#,
        #"{"header":{"msg_id":"","msg_type":"comm_msg"},"content":{"comm_id":"","data":{}}}"#,
        #"{"header":{"msg_id":"m1","msg_type":"comm_close"},"content":{"comm_id":"c1000","data":{}}}"#,
        #"{"header":{"msg_id":"m1","msg_type":"comm_msg"},"content":{"comm_id":"c1000","data":{}}} "#,
        #"{"header":{"msg_id":"m1","msg_type":"comm_msg"},"content":{"comm_id":"c1000","data":{}},"metadata":{}}"#,
    ]

    func testTheUsualFramesTakeTheFastPathAndReadAsTheGeneralWalkReadsThem() {
        for text in Self.usualFrames {
            let fast = Self.checkAgreement(Array(text.utf8), jupyter)
            let shinyFast = Self.checkAgreement(Array(text.utf8), shiny)
            XCTAssertTrue(fast || text.hasPrefix(#"{"content":{"comm_id":"c","data":{"x":1}},"metadata""#), "not taken: \(text)")
            XCTAssertTrue(shinyFast, "not taken in the shinywidgets dialect: \(text)")
        }
    }

    func testEveryUnusualOrRefusedFrameIsLeftToTheGeneralWalk() {
        let declined = [
            #"{"msg_type":"comm_info_request"}"#,
            #"{"msg_type":"commhost_stats_request","content":{}}"#,
            #"{"msg_type":"comm_msg","parent_header":{},"content":{"comm_id":"c"}}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c","extra":1}}"#,
            #"{"msg_type":"comm_msg","header":{"msg_id":"m","session":"s"},"content":{"comm_id":"c"}}"#,
            #"{"msg_type":"comm_msg","msg_type":"comm_msg","content":{"comm_id":"c"}}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c","comm_id":"d"}}"#,
            #"{"msg_\u0074ype":"comm_msg","content":{"comm_id":"c"}}"#,
            #"{"msg_type":"comm_\u006dsg","content":{"comm_id":"c"}}"#,
            #"{"msg_type":"comm_msg","header":{"msg_type":"comm_open"},"content":{"comm_id":"c"}}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":5}}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c","data":[]}}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c"},"metadata":[]}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c"},"buffers":["A"]}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c"},"buffers":["\u0041AAA"]}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c"},"buffers":[1]}"#,
            #"{"msg_type":"comm_open","content":{"comm_id":"","target_name":"t"}}"#,
            #"{"msg_type":"comm_open","content":{"comm_id":"c"}}"#,
            #"{"msg_type":"comm_open","content":{"comm_id":"c","target_name":"t","target_module":1}}"#,
            #"{"msg_type":"comm_msg"}"#,
            #"{"msg_type":"comm_msg","content":{}}"#,
            #"{"content":{"comm_id":"c"}}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c","data":{"a":01}}}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c","data":{}}} x"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c","data":{}}"#,
            #"{"msg_type":"comm_msg","content":{"comm_id":"c","data":{}},}"#,
            "{}", "[]", "", "   ",
        ]
        for text in declined {
            XCTAssertFalse(Self.checkAgreement(Array(text.utf8), jupyter), "taken: \(text)")
        }
        let depthOne = FrameParser(dialect: .jupyter, limits: WireLimits(maxFrameBytes: 1 << 20, maxDepth: 1))
        XCTAssertFalse(Self.checkAgreement(Array(Self.usualFrames[1].utf8), depthOne))
        for depth in 2...4 {
            let limited = FrameParser(dialect: .jupyter, limits: WireLimits(maxFrameBytes: 1 << 20, maxDepth: depth))
            for text in Self.usualFrames { Self.checkAgreement(Array(text.utf8), limited, note: "depth \(depth)") }
        }
        let short = FrameParser(dialect: .jupyter, limits: WireLimits(maxFrameBytes: 60, maxDepth: 64))
        for text in Self.usualFrames { Self.checkAgreement(Array(text.utf8), short, note: "60-byte limit") }
    }

    /// `ServeFuzzTests`' frames (its ids, data and buffers, and its byte mutations) and the usual
    /// frames above mutated the same way: both paths agree on every one.
    func testBothPathsAgreeOnAFuzzCorpus() {
        let ids = ServeFuzzTests.ids, targets = ServeFuzzTests.targets, data = ServeFuzzTests.data
        var random = SplitMix64(seed: 0xC0FFEE)
        var taken = 0
        for i in 0..<30_000 {
            let id = ids.randomElement(using: &random)!
            let value = data.randomElement(using: &random)!
            var bytes: [UInt8]
            switch Int.random(in: 0..<6, using: &random) {
            case 0:
                bytes = Array(#"{"msg_type":"comm_open","header":{"msg_id":"o"},"content":{"comm_id":"\#(id)","target_name":"\#(targets.randomElement(using: &random)!)","data":\#(value)}}"#.utf8)
            case 1:
                let extra = [#""#, #","buffers":["AAAA"]"#, #","buffers":["QR=="]"#, #","metadata":{"k":1}"#, #","metadata":[]"#]
                    .randomElement(using: &random)!
                bytes = Array(#"{"msg_type":"comm_msg","content":{"comm_id":"\#(id)","data":\#(value)}\#(extra)}"#.utf8)
            case 2:
                bytes = Array(#"{"msg_type":"comm_close","content":{"comm_id":"\#(id)"}}"#.utf8)
            case 3:
                bytes = Array(Self.usualFrames.randomElement(using: &random)!.utf8)
            case 4:
                bytes = Array(#"{"header":{"msg_id":"\#(id)","msg_type":"comm_msg"},"content":{"comm_id":"\#(id)","data":\#(value)}}"#.utf8)
            default:
                bytes = Array(#"{"msg_type":"comm_msg","content":{"comm_id":"\#(id)","data":\#(value)}}"#.utf8)
            }
            // Two frames in three mutated: a byte changed, dropped or inserted, one to four times.
            if i % 3 != 0 {
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let at = Int.random(in: 0..<bytes.count, using: &random)
                    let byte: UInt8 = Bool.random(using: &random)
                        ? UInt8.random(in: 0...255, using: &random)
                        : Array(#"{}[],:"\ 0aeltnu"#.utf8).randomElement(using: &random)!
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: bytes[at] = byte
                    case 1: bytes.remove(at: at)
                    default: bytes.insert(byte, at: at)
                    }
                }
            }
            let parser = i % 2 == 0 ? jupyter : shiny
            if Self.checkAgreement(bytes, parser, note: "fuzz frame \(i)") { taken += 1 }
        }
        XCTAssertGreaterThan(taken, 5_000, "the corpus exercises the fast path")
    }
}
