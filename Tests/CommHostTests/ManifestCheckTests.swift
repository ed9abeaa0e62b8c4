import Foundation
import XCTest
import CommHost

/// `commhost check`: validation plus loading every enabled library through
/// the real loader (the built example plugins) to confirm handlers exist.
final class ManifestCheckTests: XCTestCase {
    private func check(_ fixture: ManifestFixture, json: Bool = false) -> (output: String, exitCode: Int32) {
        ManifestCheck.run(path: fixture.manifestPath, executableDirectory: fixture.bin, json: json)
    }

    func testCleanManifestPrintsOneOKLineAndExitsZero() throws {
        let fixture = try ManifestFixture(self)
        try fixture.builtPlugin("Echo")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "commhost.echo", "library": "libEchoPlugin.so", "handler": "echo"},
          {"target_name": "echo.again", "library": "libEchoPlugin.so", "handler": "echo"},
          {"target_name": "off", "library": "libAbsent.so", "handler": "x", "enabled": false}
        ]}
        """)
        let result = check(fixture)
        XCTAssertEqual(result.exitCode, 0, result.output)
        XCTAssertEqual(result.output, "\(fixture.real(fixture.manifestPath)): ok: 2 enabled targets (1 disabled), 1 library loaded and every handler found")
    }

    func testMissingHandlerIsReportedWithWhatTheLibraryExports() throws {
        let fixture = try ManifestFixture(self)
        let library = fixture.real(try fixture.builtPlugin("Echo"))
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "commhost.echo", "library": "libEchoPlugin.so",
           "handler": "ekko"}
        ]}
        """)
        let result = check(fixture)
        XCTAssertEqual(result.exitCode, 1)
        XCTAssertEqual(result.output, "\(fixture.real(fixture.manifestPath)):3: targets[0].handler: library \(library) exports no handler \"ekko\" (it exports: \"echo\")")
    }

    func testMatchingSHA256Loads() throws {
        let fixture = try ManifestFixture(self)
        let library = try fixture.builtPlugin("Echo")
        let digest = SHA256.hex(SHA256.hash(Array(try Data(contentsOf: URL(fileURLWithPath: library)))))
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "commhost.echo", "library": "libEchoPlugin.so", "handler": "echo", "sha256": "\(digest.uppercased())"}
        ]}
        """)
        let result = check(fixture)
        XCTAssertEqual(result.exitCode, 0, result.output)
    }

    func testMismatchedSHA256IsRefusedAtTheSHA256Value() throws {
        let fixture = try ManifestFixture(self)
        try fixture.builtPlugin("Echo")
        let wrong = String(repeating: "0", count: 64)
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "commhost.echo", "library": "libEchoPlugin.so", "handler": "echo",
           "sha256": "\(wrong)"}
        ]}
        """)
        let result = check(fixture, json: true)
        XCTAssertEqual(result.exitCode, 1)
        let document = try JSONDocument(parsing: result.output)
        XCTAssertEqual(document.root["ok"]?.value, .bool(false))
        guard case .array(let problems)? = document.root["problems"]?.value, problems.count == 1 else {
            return XCTFail("expected one problem: \(result.output)")
        }
        XCTAssertEqual(problems[0]["path"]?.value, .string("targets[0].sha256"))
        XCTAssertEqual(problems[0]["line"]?.intValue, 3)
        guard case .string(let message)? = problems[0]["message"]?.value else { return XCTFail("no message") }
        XCTAssertTrue(message.contains("the manifest expects \(wrong)"), message)
    }

    func testSeveralProblemsAreReportedInOneRunOnePerLine() throws {
        let fixture = try ManifestFixture(self)
        try fixture.builtPlugin("Echo")
        try fixture.library("libUnsafe.so", mode: 0o666)
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "commhost.echo", "library": "libEchoPlugin.so", "handler": "nope"},
          {"target_name": "gone", "library": "libMissing.so", "handler": "h"},
          {"target_name": "unsafe", "library": "libUnsafe.so", "handler": "h"},
          {"target_name": "typo", "library": "libEchoPlugin.so", "handler": "echo", "enable": true}
        ],
         "reload": {"debounce_ms": -1}}
        """)
        let result = check(fixture)
        XCTAssertEqual(result.exitCode, 1)
        let lines = result.output.split(separator: "\n").map(String.init)
        let file = fixture.real(fixture.manifestPath)
        XCTAssertEqual(lines.count, 5, result.output)
        XCTAssertTrue(lines[0].hasPrefix("\(file):2: targets[0].handler: library "), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("\(file):3: targets[1].library: no file \"libMissing.so\""), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("\(file):4: targets[2].library: refusing "), lines[2])
        XCTAssertTrue(lines[3].hasPrefix("\(file):5: targets[3].enable: unknown key \"enable\"; did you mean \"enabled\"?"), lines[3])
        XCTAssertTrue(lines[4].hasPrefix("\(file):7: reload.debounce_ms: expected an integer from 0 to 60000, found -1"), lines[4])
    }

    func testLibraryTheLoaderRefusesIsReportedAtTheLibraryValue() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libNotELF.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "x", "library": "libNotELF.so", "handler": "h"}
        ]}
        """)
        let result = check(fixture)
        XCTAssertEqual(result.exitCode, 1)
        XCTAssertTrue(result.output.hasPrefix("\(fixture.real(fixture.manifestPath)):2: targets[0].library: cannot load \(fixture.real(fixture.plugins))/libNotELF.so: "), result.output)
    }

    func testJSONOutputOfACleanManifest() throws {
        let fixture = try ManifestFixture(self)
        try fixture.builtPlugin("Echo")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "commhost.echo", "library": "libEchoPlugin.so", "handler": "echo"}
        ]}
        """)
        let result = check(fixture, json: true)
        XCTAssertEqual(result.exitCode, 0)
        XCTAssertEqual(result.output, #"{"ok":true,"problems":[]}"#)
    }

    func testUnreadableManifestIsAProblemWithNullLineInJSON() throws {
        let fixture = try ManifestFixture(self)
        let result = check(fixture, json: true)
        XCTAssertEqual(result.exitCode, 1)
        let document = try JSONDocument(parsing: result.output)
        guard case .array(let problems)? = document.root["problems"]?.value else { return XCTFail(result.output) }
        XCTAssertEqual(problems.first?["line"]?.value, .null)
        XCTAssertEqual(problems.first?["file"]?.value, .string(fixture.real(fixture.root) + "/commhost.json"))
    }

    func testRepositoryDefaultManifestChecksCleanAgainstTheBuiltPlugins() {
        let result = ManifestCheck.run(path: TestSupport.repoRoot + "/manifest/commhost.json",
                                       executableDirectory: TestSupport.buildDirectory, json: false)
        XCTAssertEqual(result.exitCode, 0, result.output)
    }
}
