import Foundation
import XCTest
import CommHost

/// The StrictModes-style checks made before anything is loaded: a library
/// (or the manifest) that someone other than root or the host's user could
/// replace is refused, naming the path and the permission at fault. The
/// files and directories are given their bad modes here, in the test.
final class ManifestSecurityTests: XCTestCase {
    /// A user id that is neither root nor the user running the tests.
    private let stranger: uid_t = 54_321

    private func fixtureWithLibrary(mode: mode_t = 0o644) throws -> ManifestFixture {
        let fixture = try ManifestFixture(self)
        try fixture.library("libFoo.so", mode: mode)
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h"},
          {"target_name": "b", "library": "libFoo.so", "handler": "h2"}
        ]}
        """)
        return fixture
    }

    func testSafeModesUnderTheStickyRootOwnedTempDirectoryAreAccepted() throws {
        let fixture = try fixtureWithLibrary()
        var st = stat()
        XCTAssertEqual(stat(fixture.real(fixture.root) + "/..", &st), 0)
        XCTAssertNoThrow(try manifest(fixture.load()))
    }

    func testGroupWritableLibraryIsRefusedOnceWithItsMode() throws {
        let fixture = try fixtureWithLibrary(mode: 0o664)
        let problems = problems(fixture.load())
        let library = fixture.real(fixture.plugins) + "/libFoo.so"
        XCTAssertEqual(problems.count, 1, "reported once, at the first target binding the library: \(problems)")
        assertProblem(problems, at: "targets[0].library", line: 2,
                      contains: "refusing \(library): file \(library) is writable by group (mode 0664); fix with: chmod go-w \(library)")
    }

    func testOtherWritableLibraryIsRefused() throws {
        let fixture = try fixtureWithLibrary(mode: 0o646)
        assertProblem(problems(fixture.load()), at: "targets[0].library", contains: "is writable by others (mode 0646)")
    }

    func testOtherWritableDirectoryOnThePathIsRefused() throws {
        let fixture = try fixtureWithLibrary()
        XCTAssertEqual(chmod(fixture.plugins, 0o757), 0)
        let library = fixture.real(fixture.plugins) + "/libFoo.so"
        assertProblem(problems(fixture.load()), at: "targets[0].library", line: 2,
                      contains: "refusing \(library): directory \(fixture.real(fixture.plugins)) is writable by others (mode 0757)")
    }

    func testGroupWritableAncestorDirectoryIsRefused() throws {
        let fixture = try fixtureWithLibrary()
        XCTAssertEqual(chmod(fixture.root, 0o775), 0)
        assertProblem(problems(fixture.load()), at: "targets[0].library",
                      contains: "directory \(fixture.real(fixture.root)) is writable by group (mode 0775)")
    }

    func testWritableStickyDirectoryNotOwnedByRootIsRefused() throws {
        let fixture = try fixtureWithLibrary()
        XCTAssertEqual(chmod(fixture.plugins, 0o1777), 0)
        if geteuid() == 0 {
            // As root the directory must be handed to someone else for the exemption not to apply.
            XCTAssertEqual(chown(fixture.plugins, stranger, gid_t.max), 0)
        }
        let messages = problems(fixture.load()).filter { $0.path == "targets[0].library" }.map(\.message)
        XCTAssertTrue(messages.contains { $0.contains("directory \(fixture.real(fixture.plugins)) is writable by group and others (mode 1777)") },
                      messages.description)
    }

    func testWritableStickyDirectoryOwnedByRootIsAccepted() throws {
        try XCTSkipUnless(geteuid() == 0, "only root can make a root-owned directory to test the sticky exemption")
        let fixture = try fixtureWithLibrary()
        XCTAssertEqual(chmod(fixture.plugins, 0o1777), 0)
        XCTAssertNoThrow(try manifest(fixture.load()))
    }

    func testLibraryOwnedByAnotherUserIsRefused() throws {
        try XCTSkipUnless(geteuid() == 0, "giving a file to another user needs root; run the tests as root to cover this")
        let fixture = try fixtureWithLibrary()
        let library = fixture.real(fixture.plugins) + "/libFoo.so"
        XCTAssertEqual(chown(library, stranger, gid_t.max), 0)
        assertProblem(problems(fixture.load()), at: "targets[0].library",
                      contains: "file \(library) is owned by uid \(stranger); only root or uid 0 (the user running commhost) may own it")
    }

    func testDirectoryOwnedByAnotherUserIsRefused() throws {
        try XCTSkipUnless(geteuid() == 0, "giving a directory to another user needs root; run the tests as root to cover this")
        let fixture = try fixtureWithLibrary()
        XCTAssertEqual(chown(fixture.plugins, stranger, gid_t.max), 0)
        assertProblem(problems(fixture.load()), at: "targets[0].library",
                      contains: "directory \(fixture.real(fixture.plugins)) is owned by uid \(stranger)")
    }

    func testEveryUnsafeComponentIsReported() throws {
        let fixture = try fixtureWithLibrary(mode: 0o666)
        XCTAssertEqual(chmod(fixture.plugins, 0o775), 0)
        let messages = problems(fixture.load()).filter { $0.path == "targets[0].library" }.map(\.message)
        XCTAssertEqual(messages.count, 2, messages.description)
        XCTAssertTrue(messages[0].contains("is writable by group and others (mode 0666)"), messages[0])
        XCTAssertTrue(messages[1].contains("directory \(fixture.real(fixture.plugins)) is writable by group (mode 0775)"), messages[1])
    }

    func testSymlinkedLibraryIsCheckedAtItsRealLocation() throws {
        let fixture = try ManifestFixture(self)
        try fixture.makeDirectory(fixture.plugins + "/real", mode: 0o777)
        try fixture.library("libReal.so", in: fixture.plugins + "/real")
        XCTAssertEqual(symlink("real/libReal.so", fixture.plugins + "/libFoo.so"), 0)
        try fixture.manifest("""
        {"version": 1, "plugin_paths": ["plugins"], "targets": [
          {"target_name": "a", "library": "libFoo.so", "handler": "h"}
        ]}
        """)
        assertProblem(problems(fixture.load()), at: "targets[0].library",
                      contains: "directory \(fixture.real(fixture.plugins))/real is writable by group and others (mode 0777)")
    }

    func testManifestWritableByOthersIsRefused() throws {
        let fixture = try fixtureWithLibrary()
        XCTAssertEqual(chmod(fixture.manifestPath, 0o666), 0)
        let problems = problems(fixture.load())
        let path = fixture.real(fixture.manifestPath)
        XCTAssertEqual(problems.count, 1, problems.description)
        XCTAssertNil(problems.first?.line)
        XCTAssertEqual(problems.first?.path, "")
        XCTAssertEqual(problems.first?.message, "refusing the manifest: file \(path) is writable by group and others (mode 0666); fix with: chmod go-w \(path)")
    }
}
