import CommPluginAPI
import Foundation
import XCTest
@testable import CommHost

/// The loader against real files: the built examples and C variants compiled here.
final class LoaderTests: XCTestCase {
    private var staging: StagingArea!
    private var dir: String!

    override func setUpWithError() throws {
        staging = try StagingArea()
        dir = try TestSupport.temporaryDirectory(self)
    }

    override func tearDown() {
        staging.removeAll()
    }

    /// Builds the variant plugin with `defines` and returns its path.
    private func variant(_ name: String, _ defines: [String] = []) throws -> String {
        try TestSupport.compileC(source: TestSupport.fixture("variant_plugin.c"), output: "\(dir!)/lib\(name).so",
                                 flags: defines.map { "-D\($0)" })
    }

    private func refusal(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> LoadError? {
        do {
            let library = try PluginLibrary.load(path: path, staging: staging)
            library.retire()
            XCTFail("\(path) loaded but should have been refused", file: file, line: line)
            return nil
        } catch {
            XCTAssertEqual(error.path, path, "the reason names the file", file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), "the reason is one line", file: file, line: line)
            return error
        }
    }

    func testEchoExampleLoadsWithItsHandler() throws {
        let library = try PluginLibrary.load(path: TestSupport.plugin("Echo"), staging: staging)
        defer { library.retire() }
        XCTAssertEqual(library.name, "echo")
        XCTAssertEqual(library.handlerNames, ["echo"])
        XCTAssertNotNil(library.handler(named: "echo"))
        XCTAssertNil(library.handler(named: "nope"))
        XCTAssertTrue(library.concurrent)
        XCTAssertNotEqual(library.stagedPath, TestSupport.plugin("Echo"), "the build output itself is never dlopened")
        XCTAssertTrue(library.stagedPath.hasPrefix(staging.directory + "/"))
    }

    func testCounterExampleLoadsWithItsHandlerAndIsNeverUnloaded() throws {
        let library = try PluginLibrary.load(path: TestSupport.plugin("Counter"), staging: staging)
        defer { library.retire() }
        XCTAssertEqual(library.handlerNames, ["counter"])
        XCTAssertTrue(library.containsSwift)
        XCTAssertTrue(library.handler(named: "counter")!.supportsHandOff)
    }

    func testStagedCopiesOfOneFileGetDistinctNames() throws {
        let path = try variant("twice")
        let a = try PluginLibrary.load(path: path, staging: staging)
        let b = try PluginLibrary.load(path: path, staging: staging)
        defer { a.retire(); b.retire() }
        XCTAssertNotEqual(a.stagedPath, b.stagedPath)
        XCTAssertEqual(a.sha256, b.sha256)
    }

    func testTextFileIsRefusedAsNotELF() throws {
        let path = "\(dir!)/libtext.so"
        try "not a library".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(refusal(path)?.kind, .notSharedObject)
        XCTAssertTrue(refusal(path)!.reason.contains("not an ELF file"))
    }

    func testExecutableIsRefusedAsNotSharedObject() throws {
        let source = "\(dir!)/main.c"
        try "int main(void) { return 0; }\n".write(toFile: source, atomically: true, encoding: .utf8)
        let path = try TestSupport.compileC(source: source, output: "\(dir!)/prog", flags: ["-no-pie"], shared: false)
        let error = refusal(path)
        XCTAssertEqual(error?.kind, .notSharedObject)
        XCTAssertTrue(error!.reason.contains("not a shared object"), error!.reason)
    }

    func testTruncatedLibraryIsRefusedBeforeDlopen() throws {
        // dlopen of a half-written file would fault (SIGBUS) on the missing pages.
        let whole = try Data(contentsOf: URL(fileURLWithPath: try variant("whole")))
        let path = "\(dir!)/libhalf.so"
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        let error = refusal(path)
        XCTAssertEqual(error?.kind, .notSharedObject)
        XCTAssertTrue(error!.reason.contains("truncated"), error!.reason)
    }

    func testMissingFileIsRefusedAsUnreadable() {
        let error = refusal("\(dir!)/missing.so")
        XCTAssertEqual(error?.kind, .unreadable)
        XCTAssertTrue(error!.reason.contains("No such file"), error!.reason)
    }

    func testLibraryWithoutEntryIsRefused() throws {
        let error = refusal(try variant("noentry", ["NO_ENTRY"]))
        XCTAssertEqual(error?.kind, .noEntry)
        XCTAssertTrue(error!.reason.contains("commhost_plugin_entry"), error!.reason)
    }

    func testOtherABIMajorIsRefused() throws {
        let error = refusal(try variant("major", ["ABI_MAJOR_VALUE=2"]))
        XCTAssertEqual(error?.kind, .badDescriptor)
        XCTAssertTrue(error!.reason.contains("ABI major version 2"), error!.reason)
    }

    func testNewerABIMinorIsRefused() throws {
        let error = refusal(try variant("minor", ["ABI_MINOR_VALUE=99"]))
        XCTAssertEqual(error?.kind, .badDescriptor)
        XCTAssertTrue(error!.reason.contains("1.99 is newer"), error!.reason)
    }

    func testOlderABIMinorIsAccepted() throws {
        // ABI minor 0 is the oldest there is; a plugin at the host's own minor loads.
        let library = try PluginLibrary.load(path: try variant("sameminor", ["ABI_MINOR_VALUE=0"]), staging: staging)
        library.retire()
    }

    func testDescriptorTooSmallForItsVersionIsRefused() throws {
        let error = refusal(try variant("tiny", ["STRUCT_SIZE_VALUE=8"]))
        XCTAssertEqual(error?.kind, .badDescriptor)
        XCTAssertTrue(error!.reason.contains("struct_size 8 is too small"), error!.reason)
    }

    func testDescriptorShorterThanABIOneIsRefused() throws {
        let error = refusal(try variant("short", ["STRUCT_SIZE_VALUE=40"]))
        XCTAssertEqual(error?.kind, .badDescriptor)
        XCTAssertTrue(error!.reason.contains("struct_size 40 is too small for ABI 1.0"), error!.reason)
    }

    func testHandlerWithoutNameIsRefused() throws {
        let error = refusal(try variant("nameless", ["NAMELESS_HANDLER"]))
        XCTAssertEqual(error?.kind, .badHandler)
        XCTAssertTrue(error!.reason.contains("handler 0 has no name"), error!.reason)
    }

    func testDuplicateHandlerNameIsRefused() throws {
        let error = refusal(try variant("dup", ["DUPLICATE_HANDLER"]))
        XCTAssertEqual(error?.kind, .badHandler)
        XCTAssertTrue(error!.reason.contains("repeats the name \"first\""), error!.reason)
    }

    func testHandlerWithoutOpenIsRefused() throws {
        let error = refusal(try variant("noopen", ["NO_OPEN"]))
        XCTAssertEqual(error?.kind, .badHandler)
        XCTAssertTrue(error!.reason.contains("\"first\" has no open callback"), error!.reason)
    }

    func testInitErrorIsRefusedWithThePluginsText() throws {
        let error = refusal(try variant("initfails", ["INIT_FAILS"]))
        XCTAssertEqual(error?.kind, .initFailed)
        XCTAssertTrue(error!.reason.contains("COMMHOST_EFAIL"), error!.reason)
        XCTAssertTrue(error!.reason.contains("the variant was built to fail init"), error!.reason)
    }

    func testHashMismatchIsRefusedBeforeLoading() throws {
        let path = try variant("hash")
        do {
            _ = try PluginLibrary.load(path: path, staging: staging, expectedSHA256: String(repeating: "0", count: 64))
            XCTFail("loaded despite a wrong sha256")
        } catch {
            XCTAssertEqual(error.kind, .hashMismatch)
            XCTAssertTrue(error.reason.contains("the manifest expects 0000"), error.reason)
        }
        let right = try PluginLibrary.load(path: path, staging: staging)
        right.retire()
        let again = try PluginLibrary.load(path: path, staging: staging, expectedSHA256: right.sha256.uppercased())
        again.retire()
    }

    func testRefusedLibraryLeavesNoStagedCopy() throws {
        _ = refusal(try variant("noentry2", ["NO_ENTRY"]))
        let left = try FileManager.default.contentsOfDirectory(atPath: staging.directory)
        XCTAssertEqual(left, [])
    }

    func testRetiredCLibraryIsUnmapped() throws {
        let library = try PluginLibrary.load(path: try variant("unmap"), staging: staging)
        XCTAssertFalse(library.containsSwift)
        let staged = library.stagedPath
        XCTAssertTrue(TestSupport.mappedFiles().contains(staged))
        library.retire()
        XCTAssertFalse(TestSupport.mappedFiles().contains(staged))
    }
}
