import Glibc

/// Builds and prepares what the scenarios need, once per run, in a private
/// temporary folder: C programs and plugins compiled with cc, the Python
/// venv with `comm`.
final class Toolbox {
    /// A failure to prepare something, with what to do about it.
    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    /// The private folder for compiled programs, manifests and sockets.
    let workDirectory: String
    private var compiled: [String: String] = [:]
    private var pythonReady = false

    init() throws {
        var template = Array("/tmp/commhost-bench-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Missing(description: "cannot create a temporary folder under /tmp: \(String(cString: strerror(errno)))")
        }
        workDirectory = String(cString: made)
    }

    /// Removes the work folder.
    func cleanUp() {
        _ = try? runProgram(["/bin/rm", "-rf", workDirectory])
    }

    /// Compiles C `source` with `-O2` into `name` in the work folder (a
    /// shared library when `shared`), once per name.
    func compileC(_ source: String, name: String, shared: Bool, defines: [String] = []) throws -> String {
        if let done = compiled[name] { return done }
        let output = workDirectory + "/" + name
        var arguments = ["/usr/bin/cc", "-O2", "-std=gnu11", "-I", Paths.includeDirectory]
        if shared { arguments += ["-shared", "-fPIC"] }
        arguments += defines.map { "-D" + $0 }
        arguments += ["-o", output, source]
        if !shared { arguments.append("-lpthread") }
        let log = workDirectory + "/cc.log"
        let result = try runProgram(arguments, stderrPath: log)
        guard result.status == 0 else {
            throw Missing(description: "cc failed on \(source): \(readSmallFile(log) ?? "")")
        }
        compiled[name] = output
        return output
    }

    /// The C echo plugin (Plugins/Echo/echo.c) as a plain C shared library.
    func echoPlugin() throws -> String {
        try compileC(Paths.echoPluginSource, name: "libbench_echo.so", shared: true)
    }

    /// The line-echo baseline program.
    func lineEcho() throws -> String {
        try compileC(Paths.peerDirectory + "/line_echo.c", name: "line_echo", shared: false)
    }

    /// The built commhost executable beside this one.
    func commhost() throws -> String {
        guard Paths.exists(Paths.commhostBinary) else {
            throw Missing(description: "\(Paths.commhostBinary) is missing: build the whole package first (swift build -c release) so commhost and the example plugins sit beside commhost-bench")
        }
        return Paths.commhostBinary
    }

    /// The venv's python with `comm` installed (running peer/setup.sh once if needed).
    func python() throws -> String {
        if pythonReady { return Paths.python }
        let log = workDirectory + "/setup.log"
        let result = try runProgram(["/bin/bash", Paths.peerDirectory + "/setup.sh"], stderrPath: log)
        guard result.status == 0, Paths.exists(Paths.python) else {
            throw Missing(description: "cannot set up the Python baseline (Benchmarks/peer/setup.sh): \(result.output) \(readSmallFile(log) ?? "")")
        }
        pythonReady = true
        return Paths.python
    }

    /// Runs the Python peer in `mode` and returns its one line of JSON output.
    func runPeer(_ arguments: [String]) throws -> String {
        let log = workDirectory + "/peer.log"
        let result = try runProgram([try python(), Paths.peerDirectory + "/comm_peer.py"] + arguments, stderrPath: log)
        guard result.status == 0 else {
            throw Missing(description: "comm_peer.py \(arguments.first ?? "") failed (\(result.status)): \(readSmallFile(log) ?? "")")
        }
        return result.output
    }

    /// Writes `bytes` to a file in the work folder and returns its path.
    func writeFile(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = workDirectory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Missing(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ ChildProcess.writeAll(fd, $0) }) else {
            throw Missing(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return path
    }
}
