import Foundation
import XCTest

/// Requirement 15, growth everywhere (issue 10 item 6): structs are read at
/// least at their 1.0 size, up to what both sides know, and fields past
/// `struct_size` are absent; a newer minor is refused by the compatibility
/// rule. Shown with real builds: `Fixtures/abi_grown/comm_plugin.h` is the
/// real header with one more field (`grown_1_1`) at the end of every
/// versioned struct and ABI minor 1; `Fixtures/grown_host.c` is a small C
/// test host compiled against either header; `Fixtures/growth_plugin.c` a
/// plugin compiled against either (its 1.0 build puts a non-zero word after
/// each struct, so a host reading past `struct_size` prints
/// `read-past-struct_size` instead of `absent`).
final class ABIGrowthTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
    }

    private static let grownInclude = TestSupport.fixture("abi_grown")

    private func cc(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try TestSupport.run("/usr/bin/cc", ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"] + arguments)
        guard result.status == 0 else {
            XCTFail("cc \(arguments.joined(separator: " ")) failed:\n\(result.output)", file: file, line: line)
            throw NSError(domain: "cc", code: Int(result.status))
        }
    }

    /// The header folder for a 1.0 or a grown (1.1) build.
    private func include(grown: Bool) -> String { grown ? Self.grownInclude : TestSupport.includeDirectory }

    /// The test host built against the real (1.0) or the grown (1.1) header.
    private func testHost(grown: Bool) throws -> String {
        let output = "\(dir!)/host-\(grown ? "1.1" : "1.0")"
        try cc(["-I", include(grown: grown), TestSupport.fixture("grown_host.c"), "-o", output, "-ldl"])
        return output
    }

    /// A plugin from `source` built against the real or the grown header.
    private func plugin(_ source: String, grown: Bool, defines: [String] = [], name: String) throws -> String {
        let output = "\(dir!)/lib\(name).so"
        try cc(["-shared", "-fPIC", "-fvisibility=hidden", "-I", include(grown: grown)] + defines.map { "-D\($0)" }
               + [source, "-o", output])
        return output
    }

    private func growthPlugin(grown: Bool, defines: [String] = [], name: String) throws -> String {
        try plugin(TestSupport.fixture("growth_plugin.c"), grown: grown, defines: defines, name: name)
    }

    /// Runs `host` on `plugin`: exit status and output lines.
    private func drive(_ host: String, _ plugin: String) throws -> (status: Int32, lines: [String]) {
        let result = try TestSupport.run(host, [plugin])
        return (result.status, result.output.split(separator: "\n").map(String.init))
    }

    private let sent = #"{"got":{"n":1},"host_has_grown":false,"message_has_grown":false} metadata {"m":true} buffers 1 00ff10"#

    func testGrownHeaderIsTheRealHeaderPlusOneFieldPerVersionedStructAndMinorOne() throws {
        // Keeps the fixture honest when the real header changes: strip what
        // the fixture adds and the rest must be the real header, line for line.
        let real = try String(contentsOfFile: TestSupport.includeDirectory + "/comm_plugin.h", encoding: .utf8)
        let grown = try String(contentsOfFile: Self.grownInclude + "/comm_plugin.h", encoding: .utf8)
        var lines = grown.components(separatedBy: "\n")
        let preambleEnd = try XCTUnwrap(lines.firstIndex { $0.hasPrefix(" * comm_plugin.h —") })
        lines.removeSubrange(1..<preambleEnd)
        var kept: [String] = []
        for (index, text) in lines.enumerated() {
            let added = text.contains("grown_1_1") || text.contains("(test fixture)")
                || (text.isEmpty && index + 1 < lines.count && lines[index + 1].contains("(test fixture)"))
            if !added { kept.append(text == "#define COMMHOST_ABI_MINOR 1" ? "#define COMMHOST_ABI_MINOR 0" : text) }
        }
        XCTAssertEqual(kept, real.components(separatedBy: "\n"))
        for type in ["commhost_message", "commhost_writer", "commhost_host", "commhost_handler", "commhost_plugin"] {
            XCTAssertTrue(grown.contains("offsetof(\(type), grown_1_1)"), "\(type) grew at its end")
        }
    }

    func testHostOfMinorOneLoadsAOneZeroPluginAndReadsItsStructsOnlyUpToTheirStructSize() throws {
        let run = try drive(try testHost(grown: true), try growthPlugin(grown: false, name: "growth10"))
        XCTAssertEqual(run.status, 0, run.lines.joined(separator: "\n"))
        XCTAssertEqual(run.lines, [
            "host abi 1.1 table_size \(20 * 8 + 8 + 8)",
            "plugin abi 1.0 struct_size 88 own 96 grown absent",
            "handler growth struct_size 64 own 72 grown absent",
            "init 0",
            "open 0",
            // The plugin checked COMMHOST_HAS_FIELD on nothing it knows; its
            // 1.0-size reply is read with data, metadata and buffers intact.
            "reply struct_size 56 data \(sent) grown absent",
            "message 0",
            "deinit",
        ])
    }

    func testEchoExampleBuiltForOneZeroServesOnAHostOfMinorOne() throws {
        let echo = try plugin(TestSupport.repoRoot + "/Plugins/Echo/echo.c", grown: false, name: "echo10")
        let run = try drive(try testHost(grown: true), echo)
        XCTAssertEqual(run.status, 0, run.lines.joined(separator: "\n"))
        XCTAssertTrue(run.lines.contains("plugin abi 1.0 struct_size 88 own 96 grown absent"), "\(run.lines)")
        // Echo sends back the host's own (1.1-size) message, so the 1.1 field comes back.
        XCTAssertTrue(run.lines.contains(#"reply struct_size 64 data {"n":1} metadata {"m":true} buffers 1 00ff10 grown 0x22"#),
                      "\(run.lines)")
    }

    func testGrownFieldsAreReadWhenPluginAndHostAreBothOfMinorOne() throws {
        // The counterpart of the "absent" lines above: the same host does see
        // the field when struct_size says it is there.
        let run = try drive(try testHost(grown: true), try growthPlugin(grown: true, name: "growth11"))
        XCTAssertEqual(run.status, 0, run.lines.joined(separator: "\n"))
        XCTAssertTrue(run.lines.contains("plugin abi 1.1 struct_size 96 own 96 grown 0x11"), "\(run.lines)")
        XCTAssertTrue(run.lines.contains("handler growth struct_size 72 own 72 grown 0x11"), "\(run.lines)")
        XCTAssertTrue(run.lines.contains(
            #"reply struct_size 64 data {"got":{"n":1},"host_has_grown":true,"message_has_grown":true} metadata {"m":true} buffers 1 00ff10 grown 0x11"#),
            "\(run.lines)")
    }

    func testHostOfMinorZeroRefusesAPluginBuiltForMinorOne() throws {
        let run = try drive(try testHost(grown: false), try growthPlugin(grown: true, name: "growth11"))
        XCTAssertEqual(run.status, 2, run.lines.joined(separator: "\n"))
        XCTAssertEqual(run.lines, ["host abi 1.0 table_size \(20 * 8 + 8)",
                                   "refused: plugin ABI 1.1 is newer than this host's 1.0"])
    }

    func testHostOfMinorZeroReadsLargerPluginStructsAtItsOwnSize() throws {
        // A grown build that claims minor 0 gets past the version check, so
        // the 1.0 host meets structs (descriptor, handler, replies) larger
        // than its own; the plugin, checking COMMHOST_HAS_FIELD, sees that
        // neither the host's table nor its messages have the 1.1 field.
        let grown = try growthPlugin(grown: true, defines: ["CLAIM_MINOR=0"], name: "growth11claims10")
        let run = try drive(try testHost(grown: false), grown)
        XCTAssertEqual(run.status, 0, run.lines.joined(separator: "\n"))
        XCTAssertEqual(run.lines, [
            "host abi 1.0 table_size \(20 * 8 + 8)",
            "plugin abi 1.0 struct_size 96 own 88 grown absent",
            "handler growth struct_size 72 own 64 grown absent",
            "init 0",
            "open 0",
            "reply struct_size 64 data \(sent) grown absent",
            "message 0",
            "deinit",
        ])
    }
}
