import Foundation
import Glibc
import XCTest

/// ABI growth with the real host (issue 10 item 6): the host's own sources
/// built against the test-only grown header (Fixtures/abi_grown: ABI 1.1,
/// one more field at the end of every versioned struct) serve plugins built
/// against the repository's 1.0 header (the C Echo and probe, the Swift
/// Counter on CommPluginKit): the grown host reads their shorter structs up
/// to their struct_size, and they read its longer host table and messages
/// at their own size.
final class GrownHostTests: XCTestCase {
    /// Builds the grown host once per test process: a scratch package whose
    /// CommPluginAPI target is the grown header and whose CommBase64,
    /// CommHost and commhost targets are this repository's sources.
    private static let grownHost: Result<String, any Error> = Result {
        let root = NSTemporaryDirectory() + "commhost-grown-" + UUID().uuidString
        let api = root + "/CommPluginAPI"
        try FileManager.default.createDirectory(atPath: api + "/include", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestSupport.fixture("abi_grown/comm_plugin.h"), toPath: api + "/include/comm_plugin.h")
        try "#include \"comm_plugin.h\"\n".write(toFile: api + "/comm_plugin.c", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/CommBase64", withDestinationPath: TestSupport.repoRoot + "/Sources/CommBase64")
        try FileManager.default.createSymbolicLink(atPath: root + "/CommHost", withDestinationPath: TestSupport.repoRoot + "/Sources/CommHost")
        try FileManager.default.createSymbolicLink(atPath: root + "/commhost", withDestinationPath: TestSupport.repoRoot + "/Sources/commhost")
        try """
        // swift-tools-version:6.0
        import PackageDescription
        let package = Package(
            name: "grownhost",
            targets: [
                .target(name: "CommPluginAPI", path: "CommPluginAPI"),
                .target(name: "CommBase64", path: "CommBase64"),
                .target(name: "CommHost", dependencies: ["CommPluginAPI", "CommBase64"], path: "CommHost"),
                .executableTarget(name: "commhost", dependencies: ["CommHost"], path: "commhost"),
            ],
            swiftLanguageModes: [.v6]
        )
        """.write(toFile: root + "/Package.swift", atomically: true, encoding: .utf8)
        // Under a sanitizer (CI's ASan run) the example plugins are
        // instrumented, so the grown host is built with the same one.
        let sanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil ? ["--sanitize=address"] : []
        let build = try TestSupport.run(TestSupport.swiftTool(), ["build", "--package-path", root, "--product", "commhost"] + sanitizer)
        guard build.status == 0 else {
            throw NSError(domain: "grown", code: 1, userInfo: [NSLocalizedDescriptionKey: "building the host against the grown header failed:\n\(build.output)"])
        }
        // The 1.0 example plugins SwiftPM built for this package, beside the
        // grown host (its default plugin path), as copies (the manifest
        // refuses links that lead out of the plugin path).
        let output = root + "/.build/debug"
        for name in ["Echo", "Counter"] {
            try FileManager.default.copyItem(atPath: TestSupport.plugin(name), toPath: "\(output)/lib\(name)Plugin.so")
        }
        return output + "/commhost"
    }

    override class func tearDown() {
        ServeFixture.removeProbe()
        super.tearDown()
    }

    func testAHostBuiltAgainstAGrownHeaderServes1_0PluginsInCAndSwift() throws {
        let binary = try Self.grownHost.get()
        let setup = try ServeFixture.setUp(self, config: #""open_on_start": true"#)
        let host = try ServeHarness(self, executable: binary, arguments: ["serve", "--manifest", setup.manifestPath])

        // The probe (C, 1.0) speaks first from session_start through the grown table.
        let greeting = try host.nextFrame()
        assertFrame(greeting, "comm_open")
        XCTAssertEqual(greeting.content["target_name"] as? String, "probe.greeting")
        // Its messages (1.0 commhost_message) are read whole, buffers included.
        host.send(Frame.open("p1", target: "probe.target"))
        host.send(Frame.msg("p1", data: #"{"do":"echo","n":1}"#, metadata: #"{"m":true}"#, buffers: #"["AAEC"]"#))
        let echo = try host.nextFrame()
        assertJSON(echo.data, #"{"do":"echo","n":1}"#)
        assertJSON(echo["metadata"], #"{"m":true}"#)
        assertJSON(echo["buffers"], #"["AAEC"]"#)
        // Timers and their task calls through the grown table.
        host.send(Frame.msg("p1", data: #"{"do":"timer"}"#))
        let ticks = try host.nextFrames(3).map { ServeHarness.text($0.data ?? [:]) }
        XCTAssertEqual(ticks, [#"{"tick":1}"#, #"{"tick":2}"#, #"{"tick":3}"#])
        // The C Echo and the Swift Counter, built by SwiftPM against 1.0.
        host.send(Frame.open("e1", target: "commhost.echo"))
        host.send(Frame.msg("e1", data: #"{"x":[1,2]}"#))
        assertJSON(try host.nextFrame().data, #"{"x":[1,2]}"#)
        host.send(Frame.open("k1", target: "commhost.counter", data: #"{"value":5}"#))
        host.send(Frame.msg("k1", data: #"{"method":"increment","by":2}"#))
        assertJSON(try host.nextFrame().data, #"{"method":"update","state":{"value":7}}"#)
        host.finish()
        XCTAssertEqual(setup.events(startingWith: "session_end ").count, 1)
        XCTAssertEqual(setup.events().last, "deinit")
    }

    func testTheGrownHostStillRefusesAPluginSmallerThan1_0() throws {
        let binary = try Self.grownHost.get()
        let dir = try TestSupport.temporaryDirectory(self)
        let library = try TestSupport.compileC(source: TestSupport.fixture("variant_plugin.c"), output: dir + "/libshort.so",
                                               flags: ["-DHANDLER_STRUCT_SIZE_VALUE=16"])
        let result = try TestSupport.run(binary, ["inspect", library])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("smaller than ABI 1.0's commhost_handler"), result.output)
    }
}
