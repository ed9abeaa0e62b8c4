// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "commhost",
    products: [
        .executable(name: "commhost", targets: ["commhost"]),
        .library(name: "CommPluginKit", targets: ["CommPluginKit"]),
        // Example plugins: each is its own shared library (libEchoPlugin.so, libCounterPlugin.so, libWidgetsPlugin.so).
        .library(name: "EchoPlugin", type: .dynamic, targets: ["Echo"]),
        .library(name: "CounterPlugin", type: .dynamic, targets: ["Counter"]),
        .library(name: "WidgetsPlugin", type: .dynamic, targets: ["Widgets"]),
    ],
    targets: [
        .target(name: "CommPluginAPI"),
        .target(name: "CommPluginKit", dependencies: ["CommPluginAPI"]),
        // The vector loops behind Wire/Base64 (SSSE3, AVX2), chosen at run time; C, no dependencies.
        .target(name: "CommBase64"),
        .target(name: "CommHost", dependencies: ["CommPluginAPI", "CommBase64"]),
        .executableTarget(name: "commhost", dependencies: ["CommHost"]),
        // The benchmark (issue 7); its Python and C peers live in Benchmarks/peer, outside the target.
        .executableTarget(name: "commhost-bench", dependencies: ["CommHost"], path: "Benchmarks/commhost-bench"),
        .target(name: "Echo", dependencies: ["CommPluginAPI"], path: "Plugins/Echo"),
        .target(name: "Counter", dependencies: ["CommPluginKit"], path: "Plugins/Counter"),
        .target(name: "Widgets", dependencies: ["CommPluginKit"], path: "Plugins/Widgets"),
        .testTarget(name: "CommHostTests", dependencies: ["CommHost"], exclude: ["Fixtures"]),
        // CommPluginKit's internals (its JSON coder, base64) through @testable; the kit's behaviour over the ABI is in CommHostTests.
        .testTarget(name: "CommPluginKitTests", dependencies: ["CommPluginKit"]),
    ],
    swiftLanguageModes: [.v6]
)
