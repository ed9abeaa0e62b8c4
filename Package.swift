// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "commhost",
    products: [
        .executable(name: "commhost", targets: ["commhost"]),
        .library(name: "CommPluginKit", targets: ["CommPluginKit"]),
        // Example plugins: each is its own shared library (libEchoPlugin.so, libCounterPlugin.so).
        .library(name: "EchoPlugin", type: .dynamic, targets: ["Echo"]),
        .library(name: "CounterPlugin", type: .dynamic, targets: ["Counter"]),
    ],
    targets: [
        .target(name: "CommPluginAPI"),
        .target(name: "CommPluginKit", dependencies: ["CommPluginAPI"]),
        .target(name: "CommHost", dependencies: ["CommPluginAPI"]),
        .executableTarget(name: "commhost", dependencies: ["CommHost"]),
        .target(name: "Echo", dependencies: ["CommPluginAPI"], path: "Plugins/Echo"),
        .target(name: "Counter", dependencies: ["CommPluginKit"], path: "Plugins/Counter"),
        .testTarget(name: "CommHostTests", dependencies: ["CommHost"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
