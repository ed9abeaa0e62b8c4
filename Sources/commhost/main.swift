import CommHost
import Glibc

let usage = """
usage: commhost [serve] [--manifest FILE] [--dialect jupyter|shinywidgets] [--log-level LEVEL] [--watch]
                        [--socket PATH [--socket-mode MODE]]
       commhost stats --socket PATH [--json] [--timeout SECONDS]
       commhost check [--json] [FILE]
       commhost inspect [--json] LIBRARY
       commhost --help

commands:
  serve     speak the comm protocol on stdin/stdout (the default command): one
            JSON frame per line in, one per line out; logs go to stderr as JSON lines.
            With --socket, listen on a Unix socket instead: each connection is one
            session with its own comms, speaking the same frames
  stats     ask the host listening on --socket for its counters (sessions, comms,
            messages and handler time per target, errors, reloads); prints a table,
            or the reply's JSON with --json (docs/STATS.md)
  check     validate a manifest and load its libraries in a throwaway stage;
            prints every problem, one per line; exit 0 clean, 1 problems, 2 usage
  inspect   load one plugin library and print its name, version, ABI and handlers
  worker    runs one library of an "isolation": "process" target; started by the host, not by people

options:
  --manifest FILE   the manifest (default: manifest/commhost.json under the current
                    directory, else under the executable's directory)
  --dialect NAME    jupyter (default) or shinywidgets
  --log-level NAME  debug, info (default), warning or error
  --watch           reload a plugin library when it is rebuilt, keeping its open comms
                    (hand-off) or closing them; also on with the manifest's reload.watch.
                    SIGHUP re-reads the manifest and applies the difference
  --socket PATH     serve (or query, for stats) on this Unix socket; a stale socket file
                    is replaced, a live one is refused; removed on shutdown
  --socket-mode MODE  octal permissions of the socket file (default 0600); must keep
                    owner read and write, e.g. 0660 to let the group connect
  --timeout SECONDS how long stats waits for the reply (default 10)
  --json            machine-readable output (check, inspect, stats)
"""

/// Prints `text` plus a newline to stdout or stderr.
func emit(_ text: String, toError: Bool = false) {
    let line = Array((text.hasSuffix("\n") ? text : text + "\n").utf8)
    // Output that cannot be written (a closed pipe) has nowhere else to go.
    line.withUnsafeBytes { try? FileSystem.writeAll(toError ? STDERR_FILENO : STDOUT_FILENO, $0) }
}

func usageFailure(_ message: String) -> Int32 {
    emit("commhost: \(message)\n\(usage)", toError: true)
    return 2
}

func runInspect(_ arguments: [String]) -> Int32 {
    do {
        let args = try Arguments(arguments, spec: .init(flags: ["json"], maxPositionals: 1))
        guard let path = args.positionals.first else { return usageFailure("inspect needs a LIBRARY path") }
        let (output, code) = Inspect.run(path: path, json: args.flag("json"))
        emit(output, toError: code != 0 && !args.flag("json"))
        return code
    } catch {
        return usageFailure(error.message)
    }
}

/// The folder holding this executable (searched for the default manifest and plugins).
func executableDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let path = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return String(path[..<slash])
}

func runServe(_ arguments: [String]) -> Int32 {
    do {
        let args = try Arguments(arguments, spec: .init(options: ["manifest", "dialect", "log-level", "socket", "socket-mode"], flags: ["watch"]))
        var options = ServeOptions(manifestPath: args.value("manifest"), executableDirectory: executableDirectory())
        options.watch = args.flag("watch")
        if let name = args.value("dialect") {
            guard let dialect = Dialect(rawValue: name) else { return usageFailure("--dialect must be jupyter or shinywidgets, not \"\(name)\"") }
            options.dialect = dialect
        }
        if let name = args.value("log-level") {
            guard let level = LogLevel(name: name) else { return usageFailure("--log-level must be debug, info, warning or error, not \"\(name)\"") }
            options.logLevel = level
        }
        if let text = args.value("socket-mode") {
            guard args.value("socket") != nil else { return usageFailure("--socket-mode needs --socket PATH") }
            guard parseSocketMode(text) != nil else {
                return usageFailure("--socket-mode must be octal permissions keeping owner read and write (0600 to 0777, e.g. 0660), not \"\(text)\"")
            }
        }
        if let path = args.value("socket") {
            guard !path.isEmpty else { return usageFailure("--socket needs a path") }
            return Host.serveSocket(options, path: path, mode: args.value("socket-mode").flatMap(parseSocketMode) ?? 0o600)
        }
        return Host.serveStdio(options)
    } catch {
        return usageFailure(error.message)
    }
}

/// Reads `--socket-mode`: octal digits for permission bits only, keeping
/// the owner's read and write (without them the host could not be reached).
func parseSocketMode(_ text: String) -> mode_t? {
    guard !text.isEmpty, text.count <= 4, text.allSatisfy({ ("0"..."7").contains($0) }),
          let mode = mode_t(text, radix: 8), mode <= 0o777, mode & 0o600 == 0o600 else { return nil }
    return mode
}

func runCheck(_ arguments: [String]) -> Int32 {
    do {
        let args = try Arguments(arguments, spec: .init(flags: ["json"], maxPositionals: 1))
        let directory = executableDirectory()
        let path = args.positionals.first ?? Host.defaultManifestPath(executableDirectory: directory)
        let (output, code) = ManifestCheck.run(path: path, executableDirectory: directory, json: args.flag("json"))
        emit(output)
        return code
    } catch {
        return usageFailure(error.message)
    }
}

/// `commhost worker`: the options the host passes (`WorkerMain` documents them).
func runWorker(_ arguments: [String]) -> Int32 {
    do {
        let args = try Arguments(arguments, spec: .init(options: ["fd", "library", "address-space", "cpu-seconds", "open-files",
                                                                  "max-frame-bytes"]))
        guard let fdText = args.value("fd"), let fd = Int32(fdText), fd > STDERR_FILENO else {
            return usageFailure("worker needs --fd N, the inherited socket (3 or higher)")
        }
        guard let library = args.value("library"), !library.isEmpty else { return usageFailure("worker needs --library PATH") }
        var options = WorkerOptions(fd: fd, libraryPath: library)
        func count(_ name: String) -> UInt64?? {
            guard let text = args.value(name) else { return .some(nil) }
            guard let value = UInt64(text), value > 0 else { return nil }
            return .some(value)
        }
        guard let addressSpace = count("address-space") else { return usageFailure("--address-space must be a positive number of bytes") }
        guard let cpuSeconds = count("cpu-seconds") else { return usageFailure("--cpu-seconds must be a positive number of seconds") }
        guard let openFiles = count("open-files") else { return usageFailure("--open-files must be a positive number of descriptors") }
        guard let maxFrame = count("max-frame-bytes") else { return usageFailure("--max-frame-bytes must be a positive number of bytes") }
        options.limits = WorkerLimits(addressSpaceBytes: addressSpace, cpuSeconds: cpuSeconds, openFiles: openFiles)
        if let maxFrame { options.maxFrameBytes = Int(clamping: min(maxFrame, UInt64(UInt32.max))) }
        return WorkerMain.run(options)
    } catch {
        return usageFailure(error.message)
    }
}

var arguments = Array(CommandLine.arguments.dropFirst())
let command = arguments.first.flatMap { $0.hasPrefix("-") ? nil : $0 } ?? "serve"
if arguments.first == command { arguments.removeFirst() }
let code: Int32
switch command {
case _ where arguments.contains("--help") || arguments.contains("-h") || command == "help":
    emit(usage)
    code = 0
case "serve":
    code = runServe(arguments)
case "check":
    code = runCheck(arguments)
case "inspect":
    code = runInspect(arguments)
case "stats":
    code = runStats(arguments)
case "worker":
    code = runWorker(arguments)
default:
    code = usageFailure("unknown command \"\(command)\"")
}
exit(code)
