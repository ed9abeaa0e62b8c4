import Foundation
import XCTest

/// Whatever a client sends, `commhost serve` keeps serving: thousands of
/// seeded pseudo-random frames (valid ones for echo and counter, with odd
/// ids, data and buffers, mixed with mutated bytes) leave the host answering,
/// writing only frames to stdout and exiting 0.
final class ServeFuzzTests: XCTestCase {
    // The ids, targets and data the frames are made of (`WireUsualFrameTests` fuzzes the parser with them too).
    static let ids = ["a", "b", "c", "", String(repeating: "x", count: 40), "é", #"a\"b"#]
    static let targets = ["commhost.echo", "commhost.counter", "nope", ""]
    static let data = [#"{}"#, #"{"value":3}"#, #"{"value":"s"}"#, #"{"value":1e308}"#,
                       #"{"method":"increment","by":2}"#, #"{"method":"increment","by":4611686018427387904}"#,
                       #"{"method":"increment","by":"x"}"#, #"{"method":"request_state"}"#, #"{"method":3}"#,
                       #"{"x":[1,{"y":null}],"\u00e9":"\ud83d\ude00"}"#]

    private func frame(_ random: inout SplitMix64) -> Data {
        let id = Self.ids.randomElement(using: &random)!
        let data = Self.data.randomElement(using: &random)!
        let text: String
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<20:
            text = #"{"msg_type":"comm_open","header":{"msg_id":"o"},"content":{"comm_id":"\#(id)","target_name":"\#(Self.targets.randomElement(using: &random)!)","data":\#(data)}}"#
        case 20..<50:
            let extra = [#""#, #","buffers":["AAAA"]"#, #","buffers":["QR=="]"#, #","metadata":{"k":1}"#, #","metadata":[]"#]
                .randomElement(using: &random)!
            text = #"{"msg_type":"comm_msg","content":{"comm_id":"\#(id)","data":\#(data)}\#(extra)}"#
        case 50..<60:
            text = #"{"msg_type":"comm_close","content":{"comm_id":"\#(id)"}}"#
        case 60..<65:
            text = #"{"msg_type":"\#(["comm_info_request", "commhost_stats_request"].randomElement(using: &random)!)"}"#
        default:
            var bytes = Array(#"{"msg_type":"comm_msg","content":{"comm_id":"\#(id)","data":\#(data)}}"#.utf8)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                let byte = UInt8.random(in: 0...255, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[at] = byte
                case 1: bytes.remove(at: at)
                default: bytes.insert(byte, at: at)
                }
            }
            return Data(bytes.filter { $0 != 0x0A })
        }
        return Data(text.utf8)
    }

    func testSixThousandRandomFramesLeaveTheHostServing() throws {
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", TestSupport.repoRoot + "/manifest/commhost.json"])
        var random = SplitMix64(seed: 0xC0FFEE)
        for _ in 0..<6_000 {
            host.send(bytes: frame(&random))
        }
        host.send(#"{"msg_type":"comm_open","content":{"comm_id":"final","target_name":"commhost.echo"}}"#)
        host.send(#"{"msg_type":"comm_msg","content":{"comm_id":"final","data":{"still":"serving"}}}"#)
        let frames = host.finish()
        XCTAssertGreaterThan(frames.count, 3_000, "the host answered throughout")
        let last = try XCTUnwrap(frames.last)
        XCTAssertEqual(last["msg_type"] as? String, "comm_msg")
        let content = last["content"] as? [String: Any]
        XCTAssertEqual(content?["comm_id"] as? String, "final")
        XCTAssertEqual((content?["data"] as? [String: Any])?["still"] as? String, "serving")
    }
}
