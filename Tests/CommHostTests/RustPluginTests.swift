import Foundation
import XCTest

/// The Rust example (`examples/rust-plugin`): a plugin with no crates, its
/// ABI structs declared by hand, built with cargo, loaded by the real loader
/// and served through `commhost serve` like a C plugin.
final class RustPluginTests: XCTestCase {
    func testTheRustExampleBuildsWithCargoLoadsAndServesAComm() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let build = try TestSupport.run(try TestSupport.cargo(), ["build", "--release", "--offline", "--manifest-path",
                                                                  TestSupport.repoRoot + "/examples/rust-plugin/Cargo.toml"],
                                        environment: ["CARGO_TARGET_DIR": dir + "/target"])
        XCTAssertEqual(build.status, 0, "cargo build: \(build.output)")
        let libraries = dir + "/target/release"
        let library = libraries + "/libcommhost_tally.so"

        let inspect = try TestSupport.run(TestSupport.commhostBinary, ["inspect", library])
        XCTAssertEqual(inspect.status, 0, inspect.output)
        XCTAssertTrue(inspect.output.contains("name:     tally") && inspect.output.contains("abi:      1.0")
                      && inspect.output.contains("handlers:\n  tally"), inspect.output)

        let manifest = dir + "/rust.json"
        try #"{"version": 1, "plugin_paths": ["\#(libraries)"], "targets": [{"target_name": "rust.tally", "library": "libcommhost_tally.so", "handler": "tally"}]}"#
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", manifest])
        host.send(Frame.open("r1", target: "rust.tally"))
        host.send(Frame.msg("r1", data: #"{"a":[1,"two"]}"#, msgID: "m1"))
        let first = try host.nextFrame()
        assertFrame(first, "comm_msg", comm: "r1")
        XCTAssertEqual(first.parentMsgID, "m1")
        assertJSON(first.data, #"{"count":1,"got":{"a":[1,"two"]}}"#)
        host.send(Frame.msg("r1", data: #"{"fail":true}"#, msgID: "m2"))
        let error = try host.nextFrame()
        XCTAssertEqual(error.msgType, "error")
        XCTAssertTrue((error.content["evalue"] as? String ?? "").contains("COMMHOST_EINVAL (-2): tally refuses {\"fail\":true}"), "\(error)")
        host.send(Frame.msg("r1", data: #"{"b":2}"#))
        assertJSON(try host.nextFrame().data, #"{"count":2,"got":{"b":2}}"#, "the count lives in the instance")
        host.send(Frame.close("r1"))
        XCTAssertEqual(try host.openCommIDs(), [])
        host.finish()
    }
}
