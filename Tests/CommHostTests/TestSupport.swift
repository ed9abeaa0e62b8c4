import Foundation
import XCTest

/// Paths and builders shared by the tests: the build folder (where
/// `swift build`/`swift test` put the commhost binary and the example
/// plugins), the repository root, and a C compiler for plugin variants.
enum TestSupport {
    /// The repository root (two levels above this file's folder).
    static let repoRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    /// The folder holding the test bundle, the commhost binary and the built plugins.
    static let buildDirectory: String = {
        var url = Bundle.main.bundleURL
        if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        if !FileManager.default.fileExists(atPath: url.appendingPathComponent("commhost").path) {
            url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            if url.pathExtension == "xctest" { url.deleteLastPathComponent() }
        }
        return url.path
    }()

    /// The built `commhost` executable.
    static var commhostBinary: String { buildDirectory + "/commhost" }

    /// A built example plugin, e.g. `plugin("Echo")` -> `.../libEchoPlugin.so`.
    static func plugin(_ name: String) -> String { buildDirectory + "/lib\(name)Plugin.so" }

    /// The ABI header's folder.
    static var includeDirectory: String { repoRoot + "/Sources/CommPluginAPI/include" }

    /// A fresh private (0700) temporary directory, removed when the test ends.
    static func temporaryDirectory(_ test: XCTestCase) throws -> String {
        let path = NSTemporaryDirectory() + "commhost-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Compiles C `source` (a path) into a shared library at `output` with
    /// extra `flags`; fails the test with the compiler's output otherwise.
    @discardableResult
    static func compileC(source: String, output: String, flags: [String] = [], shared: Bool = true) throws -> String {
        var arguments = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-I", includeDirectory]
        if shared { arguments.append("-shared") }
        arguments += flags + ["-o", output, source]
        let result = try run("/usr/bin/cc", arguments)
        guard result.status == 0 else {
            throw NSError(domain: "cc", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: "cc failed: \(result.output)"])
        }
        return output
    }

    /// Compiles the Swift plugin `source` (a path) into a shared library at
    /// `output`, linking the CommPluginKit objects the package built (the
    /// same toolchain and kit as the host's tests).
    static func compileSwiftPlugin(source: String, output: String, moduleName: String, defines: [String] = []) throws {
        let build = buildDirectory
        let kitObjects = try FileManager.default.contentsOfDirectory(atPath: build + "/CommPluginKit.build")
            .filter { $0.hasSuffix(".swift.o") }.map { build + "/CommPluginKit.build/" + $0 }
        var arguments = ["-emit-library", "-module-name", moduleName, "-swift-version", "6",
                         "-I", build + "/Modules",
                         "-Xcc", "-fmodule-map-file=" + build + "/CommPluginAPI.build/module.modulemap",
                         "-o", output, source] + kitObjects
        for define in defines { arguments += ["-D", define] }
        let result = try run(try swiftc(), arguments)
        guard result.status == 0 else {
            throw NSError(domain: "swiftc", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: "swiftc failed: \(result.output)"])
        }
    }

    /// swiftc from PATH (the toolchain running this test).
    static func swiftc() throws -> String {
        try tool("swiftc")
    }

    /// swift (the package manager's driver) from PATH.
    static func swiftTool() throws -> String {
        try tool("swift")
    }

    /// `cargo`, found on PATH (`.ci/run` makes sure it is there).
    static func cargo() throws -> String {
        try tool("cargo")
    }

    private static func tool(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        throw NSError(domain: name, code: 1, userInfo: [NSLocalizedDescriptionKey: "\(name) is not on PATH"])
    }

    /// Runs a program to completion and returns its exit status and merged
    /// output; with `input`, that is its whole standard input; in
    /// `directory` when given, with `environment` added to this process's.
    static func run(_ executable: String, _ arguments: [String], input: String? = nil, directory: String? = nil,
                    environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let stdin = input.map { _ in Pipe() }
        if let stdin { process.standardInput = stdin }
        try process.run()
        if let stdin, let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The text of /proc/self/maps (String(contentsOfFile:) truncates /proc files).
    static func mappedFiles() -> String {
        let handle = FileHandle(forReadingAtPath: "/proc/self/maps")!
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Path of a fixture under Tests/CommHostTests/Fixtures.
    static func fixture(_ name: String) -> String { repoRoot + "/Tests/CommHostTests/Fixtures/" + name }
}

/// SplitMix64, a small seeded generator: every run makes the same values, so a
/// failing random case can be replayed (the fuzz tests and the codec tests use it).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
