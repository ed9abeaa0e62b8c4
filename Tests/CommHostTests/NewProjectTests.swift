import Foundation
import XCTest

/// `commhost new`: each skeleton (C, Swift, Rust) is written, built from
/// scratch with its own build command, loaded by `inspect`, and serves a comm
/// through `commhost serve` with the manifest it came with.
final class NewProjectTests: XCTestCase {
    /// Runs `command` in `directory`; fails the test with its output unless it exits 0.
    private func build(_ command: [String], in directory: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try TestSupport.run(command[0], Array(command.dropFirst()), directory: directory)
        XCTAssertEqual(result.status, 0, "\(command.joined(separator: " ")): \(result.output)", file: file, line: line)
    }

    /// Writes the skeleton, builds it, inspects the library and serves a comm through it.
    private func skeleton(_ language: String, name: String, library: String, build command: [String], source: Bool,
                          reply: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try TestSupport.temporaryDirectory(self) + "/" + name
        var arguments = ["new", name, "--lang", language, "--dir", dir]
        if source { arguments += ["--source", TestSupport.repoRoot] }
        let written = try TestSupport.run(TestSupport.commhostBinary, arguments)
        XCTAssertEqual(written.status, 0, written.output, file: file, line: line)
        XCTAssertTrue(written.output.contains("manifest.json") && written.output.contains("try.script"), written.output, file: file, line: line)
        try build(command, in: dir, file: file, line: line)

        let inspect = try TestSupport.run(TestSupport.commhostBinary, ["inspect", "--check", dir + "/" + library])
        XCTAssertEqual(inspect.status, 0, inspect.output, file: file, line: line)
        XCTAssertTrue(inspect.output.contains("handler \(name):") && inspect.output.contains("ok: no rule was broken"), inspect.output,
                      file: file, line: line)

        let tried = try TestSupport.run(TestSupport.commhostBinary, ["try", "--strict", dir + "/" + library, dir + "/try.script"])
        XCTAssertEqual(tried.status, 0, "the skeleton's own script breaks no rule: \(tried.output)", file: file, line: line)

        let host = try ServeHarness(self, arguments: ["serve", "--manifest", dir + "/manifest.json"])
        host.send(Frame.open("n1", target: name))
        host.send(Frame.msg("n1", data: #"{"method":"increment","by":2}"#, msgID: "m1"))
        let answer = try host.nextFrame(file: file, line: line)
        assertFrame(answer, "comm_msg", comm: "n1", file: file, line: line)
        XCTAssertEqual(answer.parentMsgID, "m1", file: file, line: line)
        assertJSON(answer.data, reply, file: file, line: line)
        host.finish(file: file, line: line)
    }

    func testTheCSkeletonBuildsWithItsMakefileAndServesAComm() throws {
        // The source tree is found above the executable.
        try skeleton("c", name: "hello", library: "libhello.so", build: ["/usr/bin/make"], source: false,
                     reply: #"{"method":"update","state":{"value":2}}"#)
    }

    func testTheRustSkeletonBuildsWithCargoAndServesAComm() throws {
        try skeleton("rust", name: "hello_rs", library: "target/release/libhello_rs.so",
                     build: [try TestSupport.cargo(), "build", "--release", "--offline"], source: true,
                     reply: #"{"count":1,"got":{"method":"increment","by":2}}"#)
    }

    func testTheSwiftSkeletonBuildsAgainstTheKitByPathAndServesAComm() throws {
        try skeleton("swift", name: "hello_sw", library: ".build/debug/libHelloSw.so", build: [try TestSupport.swiftTool(), "build"], source: true,
                     reply: #"{"method":"update","state":{"value":2}}"#)
    }

    func testBadNamesLanguagesAndAnExistingFolderAreRefused() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let badName = try TestSupport.run(TestSupport.commhostBinary, ["new", "Hello-World", "--lang", "c", "--dir", dir + "/x"])
        XCTAssertEqual(badName.status, 1)
        XCTAssertTrue(badName.output.contains("NAME must be a lowercase letter"), badName.output)
        let badLanguage = try TestSupport.run(TestSupport.commhostBinary, ["new", "ok", "--lang", "cobol"])
        XCTAssertEqual(badLanguage.status, 2)
        XCTAssertTrue(badLanguage.output.contains(#"new needs --lang c, swift or rust, not "cobol""#), badLanguage.output)
        let exists = try TestSupport.run(TestSupport.commhostBinary, ["new", "ok", "--lang", "c", "--dir", dir])
        XCTAssertEqual(exists.status, 1)
        XCTAssertTrue(exists.output.contains("already exists"), exists.output)
    }
}
