import CommHost
import Glibc

let usage = """
usage: commhost [serve] [--manifest FILE] [--dialect jupyter|shinywidgets] [--log-level LEVEL] [--watch]
       commhost check [--json] [FILE]
       commhost inspect [--json] LIBRARY
       commhost --help

commands:
  serve     speak the comm protocol on stdin/stdout (the default command): one
            JSON frame per line in, one per line out; logs go to stderr as JSON lines
  check     validate a manifest and load its libraries in a throwaway stage;
            prints every problem, one per line; exit 0 clean, 1 problems, 2 usage
  inspect   load one plugin library and print its name, version, ABI and handlers

options:
  --manifest FILE   the manifest (default: manifest/commhost.json under the current
                    directory, else under the executable's directory)
  --dialect NAME    jupyter (default) or shinywidgets
  --log-level NAME  debug, info (default), warning or error
  --watch           reload a plugin library when it is rebuilt, keeping its open comms
                    (hand-off) or closing them; also on with the manifest's reload.watch.
                    SIGHUP re-reads the manifest and applies the difference
  --json            machine-readable output (check, inspect)
"""

/// Prints `text` plus a newline to stdout or stderr.
func emit(_ text: String, toError: Bool = false) {
    let line = text.hasSuffix("\n") ? text : text + "\n"
    var bytes = Array(line.utf8)[...]
    let fd = toError ? STDERR_FILENO : STDOUT_FILENO
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        bytes = bytes.dropFirst(n)
    }
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
        let args = try Arguments(arguments, spec: .init(options: ["manifest", "dialect", "log-level"], flags: ["watch"]))
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
        return Host.serveStdio(options)
    } catch {
        return usageFailure(error.message)
    }
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
default:
    code = usageFailure("unknown command \"\(command)\"")
}
exit(code)
