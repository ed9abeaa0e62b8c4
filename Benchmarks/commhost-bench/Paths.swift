import Glibc

/// Where the bench finds what it drives: the repository (peer scripts, the
/// ABI header, the default manifest) and the build folder it was built into
/// (the commhost binary and the example plugins).
enum Paths {
    /// The repository root, three levels above this source file.
    static let repoRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    /// The folder holding this executable (the build folder).
    static let buildDirectory: String = {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let path = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }()

    static var peerDirectory: String { repoRoot + "/Benchmarks/peer" }
    static var includeDirectory: String { repoRoot + "/Sources/CommPluginAPI/include" }
    static var defaultManifest: String { repoRoot + "/manifest/commhost.json" }
    static var commhostBinary: String { buildDirectory + "/commhost" }
    static var echoPluginSource: String { repoRoot + "/Plugins/Echo/echo.c" }
    static var python: String { peerDirectory + "/.venv/bin/python" }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
