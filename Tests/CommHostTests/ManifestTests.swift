import Foundation
import XCTest
import CommHost

/// A private directory holding a manifest, a `plugins` directory and an
/// empty `bin` directory standing in for the executable's directory, with
/// every mode set explicitly (the umask must not decide the outcome).
struct ManifestFixture {
    let root: String
    var plugins: String { root + "/plugins" }
    var bin: String { root + "/bin" }
    var manifestPath: String { root + "/commhost.json" }

    init(_ test: XCTestCase) throws {
        root = try TestSupport.temporaryDirectory(test)
        try makeDirectory(plugins)
        try makeDirectory(bin)
    }

    /// Creates `path` with mode `mode` (chmod after mkdir, so the umask does not matter).
    func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        XCTAssertEqual(chmod(path, mode), 0)
    }

    /// Writes `contents` to `path` with mode `mode` and returns the path.
    @discardableResult
    func write(_ contents: String, to path: String, mode: mode_t = 0o644) throws -> String {
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(chmod(path, mode), 0)
        return path
    }

    /// A stand-in library file (validation never opens it) in `directory` (default `plugins`).
    @discardableResult
    func library(_ name: String, in directory: String? = nil, mode: mode_t = 0o644) throws -> String {
        try write("not loaded by validation\n", to: (directory ?? plugins) + "/" + name, mode: mode)
    }

    /// A copy of a built example plugin (`"Echo"` -> libEchoPlugin.so) in `plugins`.
    @discardableResult
    func builtPlugin(_ name: String, as fileName: String? = nil) throws -> String {
        let destination = plugins + "/" + (fileName ?? "lib\(name)Plugin.so")
        try FileManager.default.copyItem(atPath: TestSupport.plugin(name), toPath: destination)
        XCTAssertEqual(chmod(destination, 0o755), 0)
        return destination
    }

    /// Writes the manifest text and returns its path.
    @discardableResult
    func manifest(_ json: String) throws -> String {
        try write(json, to: manifestPath)
    }

    /// Loads the manifest with `bin` as the executable's directory.
    func load() -> Result<Manifest, ManifestProblems> {
        Manifest.load(path: manifestPath, executableDirectory: bin)
    }

    /// The real path of `path` (the temporary directory may sit behind a symlink).
    func real(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension XCTestCase {
    /// The problems of a load that must fail.
    func problems(_ result: Result<Manifest, ManifestProblems>, file: StaticString = #filePath, line: UInt = #line) -> [ManifestProblem] {
        switch result {
        case .success:
            XCTFail("the manifest was accepted", file: file, line: line)
            return []
        case .failure(let failure):
            return failure.problems
        }
    }

    /// The manifest of a load that must succeed.
    func manifest(_ result: Result<Manifest, ManifestProblems>, file: StaticString = #filePath, line: UInt = #line) throws -> Manifest {
        switch result {
        case .success(let manifest): return manifest
        case .failure(let failure):
            XCTFail("the manifest was refused:\n\(failure)", file: file, line: line)
            throw failure
        }
    }

    /// Asserts that exactly one problem sits at `path` and its message
    /// contains `text`; checks its line when `atLine` is given.
    func assertProblem(_ problems: [ManifestProblem], at path: String, line atLine: Int? = nil, contains text: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        let here = problems.filter { $0.path == path }
        guard here.count == 1, let problem = here.first else {
            XCTFail("expected one problem at \(path), got:\n" + problems.map(\.description).joined(separator: "\n"), file: file, line: line)
            return
        }
        XCTAssertTrue(problem.message.contains(text), "\(problem.message) does not contain \(text)", file: file, line: line)
        if let atLine { XCTAssertEqual(problem.line, atLine, "line of \(problem)", file: file, line: line) }
    }
}

/// The manifest format: what validates, and one test per problem the
/// validator must name by JSON path and line.
final class ManifestTests: XCTestCase {
    func testGoodManifestValidatesWithEveryFieldAndDefault() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.library("libBar.so", in: fixture.bin)
        try fixture.manifest("""
        {
          "version": 1,
          "comment": "test",
          "plugin_paths": ["plugins"],
          "targets": [
            {"target_name": "jupyter.widget", "library": "libFoo.so", "handler": "widget",
             "config": {"b": [1, 2], "a": "x"}, "sha256": "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789"},
            {"target_name": "foo.other", "library": "libFoo.so", "handler": "other", "enabled": true},
            {"target_name": "bar", "library": "libBar.so", "handler": "bar"},
            {"target_name": "off", "library": "libNotBuilt.so", "handler": "x", "enabled": false}
          ],
          "limits": {"max_frame_bytes": 1024, "max_depth": 32, "max_sessions": 8},
          "reload": {"watch": true}
        }
        """)
        let manifest = try manifest(fixture.load())
        XCTAssertEqual(manifest.sourcePath, fixture.real(fixture.root) + "/commhost.json")
        XCTAssertEqual(manifest.version, 1)
        XCTAssertEqual(manifest.pluginPaths, [fixture.real(fixture.plugins), fixture.real(fixture.bin)])
        XCTAssertEqual(manifest.targets.map(\.targetName), ["jupyter.widget", "foo.other", "bar", "off"])
        XCTAssertEqual(manifest.targets.map(\.libraryPath), [
            fixture.real(fixture.plugins) + "/libFoo.so", fixture.real(fixture.plugins) + "/libFoo.so",
            fixture.real(fixture.bin) + "/libBar.so", "",
        ])
        XCTAssertEqual(manifest.targets.map(\.enabled), [true, true, true, false])
        XCTAssertEqual(manifest.targets.map(\.jsonPath), ["targets[0]", "targets[1]", "targets[2]", "targets[3]"])
        XCTAssertEqual(manifest.targets.map(\.line), [6, 8, 9, 10])
        // The config is the exact source text, and a target sharing the library gets it too.
        XCTAssertEqual(String(decoding: manifest.targets[0].config, as: UTF8.self), "{\"b\": [1, 2], \"a\": \"x\"}")
        XCTAssertEqual(manifest.targets[1].config, manifest.targets[0].config)
        XCTAssertEqual(String(decoding: manifest.targets[2].config, as: UTF8.self), "null")
        XCTAssertEqual(manifest.targets[0].sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
        XCTAssertEqual(manifest.targets[1].sha256, manifest.targets[0].sha256)
        XCTAssertNil(manifest.targets[2].sha256)
        XCTAssertEqual(manifest.limits, ManifestLimits(maxFrameBytes: 1024, maxDepth: 32, maxCommsPerSession: 100_000,
                                                       outboundHighWaterBytes: 8 << 20, maxOutboundBytes: (8 << 20) + 2 * 1024 + 65536,
                                                       maxSessions: 8))
        XCTAssertEqual(manifest.reload, ReloadSettings(watch: true, debounceMS: 150))
        XCTAssertEqual(manifest.binding(for: "bar")?.handler, "bar")
        XCTAssertNil(manifest.binding(for: "off"), "a disabled target is not served")
        XCTAssertNil(manifest.binding(for: "libFoo.so"), "only target names look bindings up")
    }

    func testMinimalManifestGetsDefaultLimitsAndReload() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest(#"{"version": 1, "targets": []}"#)
        let manifest = try manifest(fixture.load())
        XCTAssertEqual(manifest.limits, ManifestLimits(maxFrameBytes: 64 << 20, maxDepth: 256, maxCommsPerSession: 100_000,
                                                       outboundHighWaterBytes: 8_388_608, maxOutboundBytes: 142_671_872,
                                                       maxSessions: 1024))
        XCTAssertEqual(manifest.reload, ReloadSettings(watch: false, debounceMS: 150))
        XCTAssertEqual(manifest.pluginPaths, [fixture.real(fixture.bin)])
    }

    func testRepositoryDefaultManifestValidatesAgainstTheBuildDirectory() throws {
        let result = Manifest.load(path: TestSupport.repoRoot + "/manifest/commhost.json", executableDirectory: TestSupport.buildDirectory)
        let manifest = try manifest(result)
        XCTAssertEqual(manifest.targets.map(\.targetName), ["commhost.echo", "commhost.counter"])
        XCTAssertEqual(manifest.targets.map(\.handler), ["echo", "counter"])
        XCTAssertTrue(manifest.targets[0].libraryPath.hasSuffix("/libEchoPlugin.so"))
        XCTAssertTrue(manifest.targets[1].libraryPath.hasSuffix("/libCounterPlugin.so"))
    }

    func testCompleteExampleInTheDocumentationValidates() throws {
        let doc = try String(contentsOfFile: TestSupport.repoRoot + "/docs/MANIFEST.md", encoding: .utf8)
        let start = try XCTUnwrap(doc.range(of: "```json\n"))
        let end = try XCTUnwrap(doc.range(of: "\n```", range: start.upperBound..<doc.endIndex))
        let fixture = try ManifestFixture(self)
        try fixture.makeDirectory(fixture.root + "/vendor")
        try fixture.makeDirectory(fixture.root + "/vendor/plugins")
        for name in ["libEchoPlugin.so", "libCounterPlugin.so", "libAcmeWidgets.so", "libAcmeSolver.so"] {
            try fixture.library(name)
        }
        try fixture.manifest(String(doc[start.upperBound..<end.lowerBound]))
        let manifest = try manifest(fixture.load())
        XCTAssertEqual(manifest.targets.count, 6)
        XCTAssertEqual(manifest.targets[3].config, manifest.targets[2].config, "acme.table shares acme.chart's library config")
        let solver = manifest.targets[5]
        XCTAssertEqual(solver.isolation, .process)
        XCTAssertEqual(solver.handlerTimeoutMS, 30_000)
        XCTAssertEqual(solver.worker, WorkerSettings(maxCrashes: 3, crashWindowMS: 300_000, restartBackoffMS: 250,
                                                     addressSpaceBytes: 4_294_967_296, cpuSeconds: 3600, openFiles: 256))
        XCTAssertEqual(manifest.targets[0].isolation, .inProcess)
        XCTAssertEqual(manifest.limits.handlerTimeoutMS, 5000)
        XCTAssertEqual(manifest.reload, ReloadSettings(watch: true, debounceMS: 150))
    }

    func testUnknownKeySuggestsTheNearMiss() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {
          "version": 1,
          "plugin-paths": ["plugins"],
          "targets": [
            {"target_name": "a", "library": "libFoo.so", "handler": "h",
             "handlr": "h"}
          ],
          "limits": {"max_frame_byte": 10},
          "reload": {"Watch": true}
        }
        """)
        let problems = problems(fixture.load())
        assertProblem(problems, at: #"["plugin-paths"]"#, line: 3, contains: #"unknown key "plugin-paths"; did you mean "plugin_paths"?"#)
        assertProblem(problems, at: "targets[0].handlr", line: 6, contains: #"did you mean "handler"?"#)
        assertProblem(problems, at: "limits.max_frame_byte", line: 8, contains: #"did you mean "max_frame_bytes"?"#)
        assertProblem(problems, at: "reload.Watch", line: 9, contains: #"did you mean "watch"?"#)
    }

    func testUnknownKeyWithNoNearMissListsTheKnownKeys() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest(#"{"version": 1, "targets": [], "colour": "blue"}"#)
        assertProblem(problems(fixture.load()), at: "colour", line: 1,
                      contains: #"unknown key "colour" (known keys: version, plugin_paths, targets, limits, reload, comment)"#)
    }

    func testWrongTypesNameTheExpectedAndFoundKinds() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {
          "version": "1",
          "plugin_paths": "plugins",
          "targets": [
            {"target_name": 7, "library": "libFoo.so", "handler": "h", "enabled": "yes"},
            "just a string"
          ],
          "limits": [],
          "reload": {"watch": 1, "debounce_ms": true}
        }
        """)
        let problems = problems(fixture.load())
        assertProblem(problems, at: "version", line: 2, contains: "expected an integer, found string")
        assertProblem(problems, at: "plugin_paths", line: 3, contains: "expected an array of directory paths, found string")
        assertProblem(problems, at: "targets[0].target_name", line: 5, contains: "expected a string, found number")
        assertProblem(problems, at: "targets[0].enabled", line: 5, contains: "expected true or false, found string")
        assertProblem(problems, at: "targets[1]", line: 6, contains: "expected a target as an object, found string")
        assertProblem(problems, at: "limits", line: 8, contains: "expected limits as an object, found array")
        assertProblem(problems, at: "reload.watch", line: 9, contains: "expected true or false, found number")
        assertProblem(problems, at: "reload.debounce_ms", line: 9, contains: "expected an integer, found boolean")
    }

    func testDuplicateTargetNameNamesTheFirstOccurrence() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h"},
          {"target_name": "b", "library": "libFoo.so", "handler": "h"},
          {"target_name": "a", "library": "libFoo.so", "handler": "h2", "enabled": false}
        ]}
        """)
        assertProblem(problems(fixture.load()), at: "targets[2].target_name", line: 4,
                      contains: #"duplicate target name "a" (first at targets[0], line 2)"#)
    }

    func testInvalidTargetNamesAreRefusedWithTheRule() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        let long = String(repeating: "x", count: 129)
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "has space", "library": "libFoo.so", "handler": "h"},
          {"target_name": "-leading", "library": "libFoo.so", "handler": "h"},
          {"target_name": "", "library": "libFoo.so", "handler": "h"},
          {"target_name": "\(long)", "library": "libFoo.so", "handler": "h"},
          {"target_name": "caf\\u00e9", "library": "libFoo.so", "handler": "h"}
        ]}
        """)
        let problems = problems(fixture.load())
        assertProblem(problems, at: "targets[0].target_name", line: 2, contains: "contains ' '")
        assertProblem(problems, at: "targets[0].target_name", contains: "allowed are ASCII letters, digits and _ . : / @ -")
        assertProblem(problems, at: "targets[1].target_name", line: 3, contains: "must start with a letter, digit, '_' or '@'")
        assertProblem(problems, at: "targets[2].target_name", line: 4, contains: "target name is empty")
        assertProblem(problems, at: "targets[3].target_name", line: 5, contains: "129 characters long; at most 128")
        assertProblem(problems, at: "targets[4].target_name", line: 6, contains: "contains U+E9")
    }

    func testTargetNameRuleAcceptsWidgetStyleNames() {
        for name in ["jupyter.widget", "commhost.echo", "@scope/pkg:widget", "my_target-2", "_private", "0day", String(repeating: "a", count: 128)] {
            XCTAssertTrue(TargetName.isValid(name), name)
        }
        for name in ["", ".hidden", "/abs", ":x", "a b", "a\tb", "é", "a\"b", String(repeating: "a", count: 129)] {
            XCTAssertFalse(TargetName.isValid(name), name)
        }
    }

    func testMissingLibraryListsEveryDirectorySearched() throws {
        let fixture = try ManifestFixture(self)
        try fixture.makeDirectory(fixture.root + "/more")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins", "./more"], "targets": [
          {"target_name": "a", "library": "libMissing.so", "handler": "h"}
        ]}
        """)
        let searched = [fixture.plugins, fixture.root + "/more", fixture.bin].map(fixture.real).joined(separator: ", ")
        assertProblem(problems(fixture.load()), at: "targets[0].library", line: 2,
                      contains: #"no file "libMissing.so" in plugin_paths (searched: \#(searched))"#)
    }

    func testLibraryIsTakenFromTheFirstPluginPathThatHasItAndTheExecutableDirectoryLast() throws {
        let fixture = try ManifestFixture(self)
        try fixture.makeDirectory(fixture.root + "/second")
        try fixture.library("libA.so", in: fixture.root + "/second")
        try fixture.library("libA.so", in: fixture.bin)
        try fixture.library("libA.so", in: fixture.plugins)
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["second", "plugins"], "targets": [
          {"target_name": "a", "library": "libA.so", "handler": "h"}
        ]}
        """)
        XCTAssertEqual(try manifest(fixture.load()).targets[0].libraryPath, fixture.real(fixture.root + "/second") + "/libA.so")
    }

    func testLibraryOutsidePluginPathsThroughASymlinkIsRefused() throws {
        let fixture = try ManifestFixture(self)
        try fixture.makeDirectory(fixture.root + "/elsewhere")
        try fixture.library("libEvil.so", in: fixture.root + "/elsewhere")
        XCTAssertEqual(symlink(fixture.root + "/elsewhere/libEvil.so", fixture.plugins + "/libFoo.so"), 0)
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h"}
        ]}
        """)
        assertProblem(problems(fixture.load()), at: "targets[0].library", line: 2,
                      contains: "\"libFoo.so\" resolves to \(fixture.real(fixture.root))/elsewhere/libEvil.so, which is outside every plugin path")
    }

    func testLibraryOutsidePluginPathsThroughDotDotIsRefused() throws {
        let fixture = try ManifestFixture(self)
        try fixture.makeDirectory(fixture.root + "/elsewhere")
        try fixture.library("libEvil.so", in: fixture.root + "/elsewhere")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "../elsewhere/libEvil.so", "handler": "h"},
          {"target_name": "b", "library": "\(fixture.root)/elsewhere/libEvil.so", "handler": "h"}
        ]}
        """)
        let problems = problems(fixture.load())
        assertProblem(problems, at: "targets[0].library", line: 2, contains: "resolves to \(fixture.real(fixture.root))/elsewhere/libEvil.so, which is outside every plugin path")
        assertProblem(problems, at: "targets[1].library", line: 3, contains: "which is outside every plugin path")
    }

    func testLibraryPathThatStaysInsideAPluginPathIsAccepted() throws {
        let fixture = try ManifestFixture(self)
        try fixture.makeDirectory(fixture.plugins + "/sub")
        try fixture.library("libFoo.so", in: fixture.plugins + "/sub")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "sub/../sub/libFoo.so", "handler": "h"}
        ]}
        """)
        XCTAssertEqual(try manifest(fixture.load()).targets[0].libraryPath, fixture.real(fixture.plugins) + "/sub/libFoo.so")
    }

    func testMissingPluginPathDirectoryIsAProblem() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest(#"{"version": 1, "plugin_paths": ["plugins", "nope"], "targets": []}"#)
        assertProblem(problems(fixture.load()), at: "plugin_paths[1]", line: 1,
                      contains: "directory \"nope\" cannot be used (looked for \(fixture.real(fixture.root))/nope): No such file or directory")
    }

    func testConflictingConfigsForOneLibraryNameTheSecondTarget() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "config": {"x": 1, "y": [true]}},
          {"target_name": "b", "library": "libFoo.so", "handler": "h", "config": {"y": [true], "x": 1.0}},
          {"target_name": "c", "library": "libFoo.so", "handler": "h"},
          {"target_name": "d", "library": "libFoo.so", "handler": "h",
           "config": {"x": 2, "y": [true]}}
        ]}
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.count, 1, problems.description)
        assertProblem(problems, at: "targets[3].config", line: 6,
                      contains: "differs from the config given for the same library \(fixture.real(fixture.plugins))/libFoo.so at targets[0].config (line 2)")
    }

    func testConflictingSHA256ForOneLibraryIsAProblem() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        let a = String(repeating: "a", count: 64), b = String(repeating: "b", count: 64)
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "sha256": "\(a)"},
          {"target_name": "b", "library": "libFoo.so", "handler": "h", "sha256": "\(b)"}
        ]}
        """)
        assertProblem(problems(fixture.load()), at: "targets[1].sha256", line: 3, contains: "differs from the sha256 given for the same library")
    }

    func testMalformedSHA256IsRefused() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "sha256": "abc123"}
        ]}
        """)
        assertProblem(problems(fixture.load()), at: "targets[0].sha256", line: 2, contains: "expected 64 hexadecimal digits")
    }

    func testBadLimitsAndReloadValuesAreRefused() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [],
         "limits": {
           "max_frame_bytes": 0,
           "max_depth": -3,
           "max_comms_per_session": 1.5,
           "max_outbound_bytes": 99999999999999999999999,
           "max_widgets": 4
         },
         "reload": {"debounce_ms": 60001}
        }
        """)
        let problems = problems(fixture.load())
        assertProblem(problems, at: "limits.max_frame_bytes", line: 3, contains: "expected a positive integer, found 0")
        assertProblem(problems, at: "limits.max_depth", line: 4, contains: "expected a positive integer, found -3")
        assertProblem(problems, at: "limits.max_comms_per_session", line: 5, contains: "written without fraction or exponent, found 1.5")
        assertProblem(problems, at: "limits.max_outbound_bytes", line: 6, contains: "is too large")
        assertProblem(problems, at: "limits.max_widgets", line: 7, contains: "unknown key \"max_widgets\"")
        assertProblem(problems, at: "reload.debounce_ms", line: 9, contains: "expected an integer from 0 to 60000, found 60001")
    }

    func testOutboundBoundDefaultsToTheHighWaterMarkPlusTwoFramesAndTheEnvelope() throws {
        XCTAssertEqual(ManifestLimits.defaults.outboundHighWaterBytes, 8_388_608)
        XCTAssertEqual(ManifestLimits.defaults.maxOutboundBytes, 8_388_608 + 2 * 67_108_864 + 65_536)
        XCTAssertEqual(ManifestLimits.minimumOutboundBytes(maxFrameBytes: 1000, outboundHighWaterBytes: 5000), 72_536)
        let fixture = try ManifestFixture(self)
        try fixture.manifest(#"{"version": 1, "targets": [], "limits": {"max_frame_bytes": 4096, "outbound_high_water_bytes": 100000}}"#)
        let limits = try manifest(fixture.load()).limits
        XCTAssertEqual(limits.outboundHighWaterBytes, 100_000)
        XCTAssertEqual(limits.maxOutboundBytes, 100_000 + 2 * 4096 + 65_536, "derived from the values given, not the defaults")
    }

    func testOutboundMinimumSaturatesInsteadOfOverflowing() throws {
        XCTAssertEqual(ManifestLimits.minimumOutboundBytes(maxFrameBytes: Int.max, outboundHighWaterBytes: 1), Int.max)
        XCTAssertEqual(ManifestLimits.minimumOutboundBytes(maxFrameBytes: Int.max / 2, outboundHighWaterBytes: 1), Int.max)
        XCTAssertEqual(ManifestLimits.minimumOutboundBytes(maxFrameBytes: 1, outboundHighWaterBytes: Int.max), Int.max)
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [],
         "limits": {"max_frame_bytes": 9223372036854775807, "max_outbound_bytes": 9223372036854775807}}
        """)
        let limits = try manifest(fixture.load()).limits
        XCTAssertEqual(limits.maxOutboundBytes, Int.max)
    }

    func testOutboundBoundBelowTheMinimumIsRefusedWithTheMinimumAndTheFix() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [],
         "limits": {
           "max_frame_bytes": 1048576,
           "max_outbound_bytes": 4194304
         }
        }
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.count, 1, problems.map(\.description).joined(separator: "\n"))
        let minimum = 8_388_608 + 2 * 1_048_576 + 65_536
        assertProblem(problems, at: "limits.max_outbound_bytes", line: 4,
                      contains: "4194304 is below the minimum of \(minimum) these limits need")
        assertProblem(problems, at: "limits.max_outbound_bytes", contains: "= 8388608 + 2 * 1048576 + 65536")
        assertProblem(problems, at: "limits.max_outbound_bytes", contains: "shinywidgets dialect can double")
        assertProblem(problems, at: "limits.max_outbound_bytes",
                      contains: "raise it to at least \(minimum), or lower max_frame_bytes or outbound_high_water_bytes")
    }

    func testHighWaterMarkNotBelowTheOutboundBoundIsRefusedAlongsideTheMinimum() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [],
         "limits": {
           "max_frame_bytes": 1024,
           "outbound_high_water_bytes": 200000,
           "max_outbound_bytes": 200000
         }
        }
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.map(\.path), ["limits.outbound_high_water_bytes", "limits.max_outbound_bytes"], "in file order")
        assertProblem(problems, at: "limits.outbound_high_water_bytes", line: 4,
                      contains: "200000 is not below max_outbound_bytes (200000)")
        assertProblem(problems, at: "limits.outbound_high_water_bytes",
                      contains: "lower outbound_high_water_bytes or raise max_outbound_bytes")
        assertProblem(problems, at: "limits.max_outbound_bytes", line: 5,
                      contains: "below the minimum of \(200_000 + 2 * 1024 + 65_536)")
    }

    func testHighWaterMarkAtTheLargestIntegerIsNotBelowTheDerivedBound() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [],
         "limits": {"outbound_high_water_bytes": 9223372036854775807}}
        """)
        assertProblem(problems(fixture.load()), at: "limits.outbound_high_water_bytes", line: 2,
                      contains: "is not below the derived max_outbound_bytes (9223372036854775807)")
    }

    func testExplicitHighWaterMarkAndBoundThatFitAreAccepted() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [],
         "limits": {"max_frame_bytes": 65536, "outbound_high_water_bytes": 65536, "max_outbound_bytes": 262144}}
        """)
        let limits = try manifest(fixture.load()).limits
        XCTAssertEqual(limits.maxFrameBytes, 65_536)
        XCTAssertEqual(limits.outboundHighWaterBytes, 65_536)
        XCTAssertEqual(limits.maxOutboundBytes, 262_144, "exactly the minimum is enough")
    }

    func testRefusedFrameLimitIsNotComparedWithTheOutboundBound() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [],
         "limits": {"max_frame_bytes": 0, "max_outbound_bytes": 1000}}
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.map(\.path), ["limits.max_frame_bytes"], "one problem for the one mistake")
    }

    func testMissingAndUnsupportedVersionAreRefused() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("{\"targets\": []}")
        assertProblem(problems(fixture.load()), at: "version", line: 1, contains: "missing; write \"version\": 1")
        try fixture.manifest("{\"version\": 2, \"targets\": []}")
        assertProblem(problems(fixture.load()), at: "version", line: 1, contains: "unsupported format version 2; this commhost reads version 1")
    }

    func testMissingRequiredTargetFieldsAreEachNamed() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("{\"version\": 1, \"targets\": [\n {}\n]}")
        let problems = problems(fixture.load())
        assertProblem(problems, at: "targets[0].target_name", line: 2, contains: "missing")
        assertProblem(problems, at: "targets[0].library", line: 2, contains: "missing")
        assertProblem(problems, at: "targets[0].handler", line: 2, contains: "missing")
        try fixture.manifest(#"{"version": 1}"#)
        assertProblem(self.problems(fixture.load()), at: "targets", line: 1, contains: "missing")
    }

    func testDuplicateKeysAreReportedWhereverTheyAre() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h",
           "handler": "h2", "config": {"k": 1,
             "k": 2}}
        ],
         "version": 1}
        """)
        let problems = problems(fixture.load())
        assertProblem(problems, at: "targets[0].handler", line: 3, contains: "duplicate key \"handler\" (first at line 2)")
        assertProblem(problems, at: "targets[0].config.k", line: 4, contains: "duplicate key \"k\" (first at line 3)")
        assertProblem(problems, at: "version", line: 6, contains: "duplicate key \"version\" (first at line 1)")
    }

    func testSyntaxErrorIsOneProblemWithLineAndColumn() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("{\"version\": 1,\n \"targets\": [\n  {\"target_name\": \"a\",}\n ]\n}")
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.count, 1)
        assertProblem(problems, at: "targets[0]", line: 3, contains: "invalid JSON (column 23): trailing comma before '}'")
    }

    func testUnreadableManifestIsOneProblemWithoutLine() throws {
        let fixture = try ManifestFixture(self)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.count, 1)
        XCTAssertNil(problems.first?.line)
        XCTAssertEqual(problems.first?.description, "\(fixture.real(fixture.root))/commhost.json: cannot read the manifest: No such file or directory")
    }

    func testDisabledTargetsLibraryIsNotLookedUp() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [
          {"target_name": "a", "library": "libNotBuiltYet.so", "handler": "h", "enabled": false}
        ]}
        """)
        let manifest = try manifest(fixture.load())
        XCTAssertEqual(manifest.targets.first?.libraryPath, "")
        XCTAssertTrue(manifest.enabledTargets.isEmpty)
    }

    func testEveryProblemInOneFileIsReportedInFileOrder() throws {
        let fixture = try ManifestFixture(self)
        try fixture.manifest("""
        {"version": 1, "targets": [
          {"target_name": "bad name", "library": "libMissing.so", "handler": "h"},
          {"target_name": "ok", "library": "libMissing.so", "handler": "h", "enabeld": false}
        ],
         "limits": {"max_depth": 0}}
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.map(\.path), [
            "targets[0].target_name", "targets[0].library", "targets[1].enabeld", "targets[1].library", "limits.max_depth",
        ])
        XCTAssertEqual(problems.compactMap(\.line), [2, 2, 3, 3, 5])
    }

    func testProblemDescriptionIsFileLinePathMessage() {
        XCTAssertEqual(ManifestProblem(file: "/m.json", line: 3, path: "targets[0].library", message: "gone").description,
                       "/m.json:3: targets[0].library: gone")
        XCTAssertEqual(ManifestProblem(file: "/m.json", line: nil, path: "", message: "unreadable").description,
                       "/m.json: unreadable")
    }

    // MARK: isolation, handler timeouts and workers

    func testIsolationTimeoutAndWorkerDefaultToInProcessFiveSecondsAndDefaultSettings() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h"}
        ]}
        """)
        let manifest = try manifest(fixture.load())
        XCTAssertEqual(manifest.limits.handlerTimeoutMS, 5000)
        let target = try XCTUnwrap(manifest.targets.first)
        XCTAssertEqual(target.isolation, .inProcess)
        XCTAssertEqual(target.handlerTimeoutMS, 5000)
        XCTAssertEqual(target.worker, WorkerSettings(maxCrashes: 5, crashWindowMS: 60_000, restartBackoffMS: 100,
                                                     addressSpaceBytes: nil, cpuSeconds: nil, openFiles: nil))
        XCTAssertEqual(target.worker, .defaults)
        XCTAssertEqual(Isolation.inProcess.rawValue, "in-process")
        XCTAssertEqual(Isolation.process.rawValue, "process")
    }

    func testIsolationTimeoutAndEveryWorkerMemberAreReadWithTheirValues() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.library("libBar.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "isolation": "process", "handler_timeout_ms": 250,
           "worker": {"max_crashes": 2, "crash_window_ms": 1000, "restart_backoff_ms": 0,
                      "address_space_bytes": 1073741824, "cpu_seconds": 30, "open_files": 64}},
          {"target_name": "b", "library": "libBar.so", "handler": "h", "isolation": "in-process"},
          {"target_name": "c", "library": "libBar.so", "handler": "h", "handler_timeout_ms": 1}
        ],
         "limits": {"handler_timeout_ms": 7000}}
        """)
        let manifest = try manifest(fixture.load())
        XCTAssertEqual(manifest.limits.handlerTimeoutMS, 7000)
        XCTAssertEqual(manifest.targets.map(\.isolation), [.process, .inProcess, .inProcess])
        XCTAssertEqual(manifest.targets.map(\.handlerTimeoutMS), [250, 7000, 1], "a target's own timeout, else the limits' value")
        XCTAssertEqual(manifest.targets[0].worker, WorkerSettings(maxCrashes: 2, crashWindowMS: 1000, restartBackoffMS: 0,
                                                                  addressSpaceBytes: 1 << 30, cpuSeconds: 30, openFiles: 64))
        XCTAssertEqual(manifest.targets[1].worker, .defaults)
    }

    func testProcessIsolationWithoutWorkerGetsTheDefaultSettings() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "isolation": "process", "worker": {"cpu_seconds": 9}},
          {"target_name": "b", "library": "libFoo.so", "handler": "h", "isolation": "process", "enabled": false}
        ]}
        """)
        let manifest = try manifest(fixture.load())
        XCTAssertEqual(manifest.targets[0].worker, WorkerSettings(cpuSeconds: 9), "absent members take their defaults")
        XCTAssertEqual(manifest.targets[1].worker, .defaults, "a disabled target does not take its library's worker")
    }

    func testWrongIsolationTimeoutAndWorkerValuesAreProblemsAtTheirPathAndLine() throws {
        let fixture = try ManifestFixture(self)
        // Disabled targets: their fields are checked for form, their libraries are not looked up.
        try fixture.manifest("""
        {"version": 1, "targets": [
          {"target_name": "a", "library": "libA.so", "handler": "h", "enabled": false,
           "isolation": 1,
           "handler_timeout_ms": 0},
          {"target_name": "b", "library": "libB.so", "handler": "h", "enabled": false,
           "isolation": "proces",
           "handler_timeout_ms": "5",
           "worker": {}},
          {"target_name": "c", "library": "libC.so", "handler": "h", "enabled": false, "isolation": "process",
           "worker": ["max_crashes", 5]},
          {"target_name": "d", "library": "libD.so", "handler": "h", "enabled": false, "isolation": "process",
           "handler_timeout_ms": 2.5,
           "worker": {
             "max_crashes": 0,
             "crash_window_ms": -1,
             "restart_backoff_ms": 5001,
             "address_space_bytes": 1.5,
             "cpu_seconds": 0,
             "open_files": true
           }},
          {"target_name": "e", "library": "libE.so", "handler": "h", "enabled": false, "isolation": "process",
           "worker": {"restart_backoff_ms": -1}}
        ],
         "limits": {"handler_timeout_ms": 0}}
        """)
        let problems = problems(fixture.load())
        assertProblem(problems, at: "targets[0].isolation", line: 3, contains: "expected a string, found number")
        assertProblem(problems, at: "targets[0].handler_timeout_ms", line: 4, contains: "expected a positive integer, found 0")
        assertProblem(problems, at: "targets[1].isolation", line: 6,
                      contains: #"expected "in-process" or "process", found "proces"; did you mean "process"?"#)
        assertProblem(problems, at: "targets[1].handler_timeout_ms", line: 7, contains: "expected an integer, found string")
        XCTAssertTrue(problems.filter { $0.path == "targets[1].worker" }.isEmpty,
                      "a refused isolation does not also make its worker a problem: \(problems)")
        assertProblem(problems, at: "targets[2].worker", line: 10, contains: "expected worker as an object, found array")
        assertProblem(problems, at: "targets[3].handler_timeout_ms", line: 12,
                      contains: "expected a positive integer written without fraction or exponent, found 2.5")
        assertProblem(problems, at: "targets[3].worker.max_crashes", line: 14, contains: "expected a positive integer, found 0")
        assertProblem(problems, at: "targets[3].worker.crash_window_ms", line: 15, contains: "expected a positive integer, found -1")
        assertProblem(problems, at: "targets[3].worker.restart_backoff_ms", line: 16,
                      contains: "expected an integer from 0 to 5000, found 5001")
        assertProblem(problems, at: "targets[3].worker.address_space_bytes", line: 17,
                      contains: "written without fraction or exponent, found 1.5")
        assertProblem(problems, at: "targets[3].worker.cpu_seconds", line: 18, contains: "expected a positive integer, found 0")
        assertProblem(problems, at: "targets[3].worker.open_files", line: 19, contains: "expected an integer, found boolean")
        assertProblem(problems, at: "targets[4].worker.restart_backoff_ms", line: 22,
                      contains: "expected an integer from 0 to 5000, found -1")
        assertProblem(problems, at: "limits.handler_timeout_ms", line: 24, contains: "expected a positive integer, found 0")
        XCTAssertEqual(problems.count, 14, problems.map(\.description).joined(separator: "\n"))
    }

    func testWorkerWithoutProcessIsolationIsRefused() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.library("libBar.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h",
           "worker": {"max_crashes": 1}},
          {"target_name": "b", "library": "libBar.so", "handler": "h", "isolation": "in-process",
           "worker": {}}
        ]}
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.count, 2, problems.map(\.description).joined(separator: "\n"))
        assertProblem(problems, at: "targets[0].worker", line: 3,
                      contains: #"a worker is only allowed with "isolation": "process", and this target's isolation is "in-process" (the default); add "isolation": "process" to this target or remove "worker""#)
        assertProblem(problems, at: "targets[1].worker", line: 5,
                      contains: #"this target's isolation is "in-process"; add "isolation": "process""#)
    }

    func testUnknownWorkerMemberSuggestsTheNearMiss() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "isolation": "process",
           "worker": {"max_crash": 3,
                      "CPU-Seconds": 3,
                      "rlimit_nofile": 64}}
        ]}
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.count, 3, problems.map(\.description).joined(separator: "\n"))
        assertProblem(problems, at: "targets[0].worker.max_crash", line: 3, contains: #"unknown key "max_crash"; did you mean "max_crashes"?"#)
        assertProblem(problems, at: #"targets[0].worker["CPU-Seconds"]"#, line: 4, contains: #"did you mean "cpu_seconds"?"#)
        assertProblem(problems, at: "targets[0].worker.rlimit_nofile", line: 5,
                      contains: #"unknown key "rlimit_nofile" (known keys: max_crashes, crash_window_ms, restart_backoff_ms, address_space_bytes, cpu_seconds, open_files)"#)
    }

    func testConflictingIsolationForOneLibraryNamesTheFirstTarget() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "isolation": "process"},
          {"target_name": "b", "library": "libFoo.so", "handler": "h", "isolation": "process", "handler_timeout_ms": 10},
          {"target_name": "c", "library": "libFoo.so", "handler": "h", "enabled": false, "isolation": "in-process"},
          {"target_name": "d", "library": "libFoo.so", "handler": "h",
           "isolation": "in-process"}
        ]}
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.count, 1, problems.map(\.description).joined(separator: "\n"))
        assertProblem(problems, at: "targets[3].isolation", line: 6,
                      contains: #"differs from the isolation "process" given for the same library \#(fixture.real(fixture.plugins))/libFoo.so at targets[0].isolation (line 2); a library is loaded once"#)
    }

    func testConflictingWorkerSettingsForOneLibraryNameTheFirstTarget() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "isolation": "process",
           "worker": {"max_crashes": 3}},
          {"target_name": "b", "library": "libFoo.so", "handler": "h", "isolation": "process",
           "worker": {"crash_window_ms": 60000, "max_crashes": 3}},
          {"target_name": "c", "library": "libFoo.so", "handler": "h", "isolation": "process",
           "worker": {}}
        ]}
        """)
        let problems = problems(fixture.load())
        XCTAssertEqual(problems.count, 1, "settings are compared with defaults filled in:\n" + problems.map(\.description).joined(separator: "\n"))
        assertProblem(problems, at: "targets[2].worker", line: 7,
                      contains: "differs from the worker settings given for the same library \(fixture.real(fixture.plugins))/libFoo.so at targets[0].worker (line 3)")
    }

    func testTargetsOfOneLibraryShareIsolationAndWorkerButNotTheTimeout() throws {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so")
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h", "isolation": "process", "handler_timeout_ms": 100},
          {"target_name": "b", "library": "libFoo.so", "handler": "h", "isolation": "process", "worker": {"open_files": 64}},
          {"target_name": "c", "library": "libFoo.so", "handler": "h"},
          {"target_name": "d", "library": "libFoo.so", "handler": "h", "enabled": false}
        ],
         "limits": {"handler_timeout_ms": 900}}
        """)
        let manifest = try manifest(fixture.load())
        XCTAssertEqual(manifest.targets.map(\.isolation), [.process, .process, .process, .inProcess])
        XCTAssertEqual(manifest.targets.map(\.worker), [WorkerSettings(openFiles: 64), WorkerSettings(openFiles: 64),
                                                        WorkerSettings(openFiles: 64), .defaults])
        XCTAssertEqual(manifest.targets.map(\.handlerTimeoutMS), [100, 900, 900, 900])
    }

    func testRestartDelayDoublesPerCrashInTheWindowUpToFiveSeconds() {
        let settings = WorkerSettings()
        XCTAssertEqual((1...8).map { settings.restartDelayMS(crashesInWindow: $0) }, [100, 200, 400, 800, 1600, 3200, 5000, 5000])
        XCTAssertEqual(WorkerSettings(restartBackoffMS: 0).restartDelayMS(crashesInWindow: 4), 0)
        XCTAssertEqual(WorkerSettings(restartBackoffMS: 5000).restartDelayMS(crashesInWindow: 1), 5000)
        XCTAssertEqual(WorkerSettings(restartBackoffMS: 3).restartDelayMS(crashesInWindow: Int.max), 5000, "no overflow")
        XCTAssertEqual(WorkerSettings.restartBackoffRange, 0...5000)
    }
}
