import CommHost
import Glibc

/// `commhost --help`: every command in a line or two, and where to read more.
let overview = """
usage: commhost [COMMAND] [OPTIONS]

commands:
  serve     speak the comm protocol on stdin/stdout, or on a Unix socket (the default command)
  stats     print the counters of a host serving on --socket
  check     validate a manifest and load its libraries in a throwaway stage
  inspect   load one plugin library and print its name, version, ABI and handlers
  try       run one plugin library without a manifest against a scripted session
  new       write a plugin project (C, Swift or Rust) that builds as it is
  help      print the help of one command: commhost help serve
  worker    runs one library of an "isolation": "process" target; started by the host, not by people

options:
  --help, -h   this text (after a command: that command's help)
  --version    commhost's version and the plugin ABI version it serves
"""

/// Each command's own help: `commhost help COMMAND`, `commhost COMMAND --help`.
let commandHelp: [String: String] = [
    "serve": """
    usage: commhost [serve] [--manifest FILE] [--dialect jupyter|shinywidgets] [--log-level LEVEL] [--watch]
                            [--socket PATH [--socket-mode MODE]] [--trace FILE|-]

    Speaks the comm protocol on stdin/stdout: one JSON frame per line in, one per
    line out; logs go to stderr as JSON lines. With --socket, listens on a Unix
    socket instead: each connection is one session with its own comms, speaking
    the same frames. A refused start (a manifest problem, a socket that cannot be
    bound) logs every problem, then one line saying why, and exits 1.

    options:
      --manifest FILE   the manifest (default: manifest/commhost.json under the current
                        directory, else under the executable's directory); docs/MANIFEST.md
      --dialect NAME    jupyter (default) or shinywidgets
      --log-level NAME  debug, info (default), warning or error
      --watch           reload a plugin library when it is rebuilt, keeping its open comms
                        (hand-off) or closing them; also on with the manifest's reload.watch.
                        SIGHUP re-reads the manifest and applies the difference
      --socket PATH     serve on this Unix socket; a stale socket file is replaced, a live
                        one is refused; removed on shutdown
      --socket-mode MODE  octal permissions of the socket file (default 0600); must keep
                        owner read and write, e.g. 0660 to let the group connect
      --trace FILE      write every frame in and out to FILE (- for stderr), one JSON line
                        each: time, session, direction, comm id, the frame's text
    """,
    "stats": """
    usage: commhost stats --socket PATH [--json] [--timeout SECONDS]

    Asks the host listening on --socket for its counters (sessions, comms, messages
    and handler time per target, errors, reloads, workers) and prints a table, or
    the reply's JSON with --json (docs/STATS.md). Exit 0, 1 when the host cannot be
    reached or answers something unreadable, 2 on a usage error.

    options:
      --socket PATH      the socket a `commhost serve --socket` listens on
      --json             the reply's content as JSON
      --timeout SECONDS  how long to wait for the reply (default 10)
    """,
    "check": """
    usage: commhost check [--json] [FILE]

    Validates a manifest (default: the one serve would read) and loads its
    libraries in a throwaway stage; prints every problem, one per line, with the
    file, line and JSON path. Exit 0 clean, 1 problems, 2 on a usage error.

    options:
      --json   one JSON object: ok, the problems, the enabled targets
    """,
    "inspect": """
    usage: commhost inspect [--json] [--check] LIBRARY

    Loads one plugin library (staged, as serve loads it) and prints its name,
    version, ABI version, flags and handlers, or why it cannot be loaded. Exit 0,
    1 when it is refused (or, with --check, when a step failed or a rule was
    broken), 2 on a usage error.

    options:
      --json    one JSON object
      --check   also run each handler once in a throwaway session without a front
                end (session_start, comm_open with {}, a comm_msg with {}, comm_close,
                session_end) and report what each step answered, what the plugin
                sent, and every rule the host saw it break
    """,
    "try": """
    usage: commhost try LIBRARY [--handler NAME] [--target NAME] [--config JSON]
                        [--handler-timeout-ms MS] [--strict] [SCRIPT]

    Runs one plugin library without a manifest or a front end: one session,
    driven by SCRIPT (a file, or standard input), printing every frame the host
    writes as it comes, with ids that repeat from run to run (message ids
    host-1, host-2, …; generated comm ids comm-1, …) so the output can be
    compared with a golden file. Every ABI rule the plugin breaks is reported
    on stderr as it happens: a send or close after the comm closed, data that is
    not a JSON object, a failure status without error text, a callback longer
    than the deadline, a handle it does not hold, references still held after
    deinit.

    A script line is a frame (a line starting with {, sent as it is) or one of:
      open [DATA]    open comm c1, c2, … for the target (DATA: a JSON object, default {})
      msg [DATA]     a comm_msg to the comm opened last
      close [DATA]   close the comm opened last
      info           a comm_info_request
      wait MS        wait MS milliseconds (for timers), printing what comes
      end            end the session (also at the end of the script)
    Empty lines and lines starting with # are skipped; frames get header.msg_id
    line-N, N being the script line.

    options:
      --handler NAME   the handler to serve (default: the library's first)
      --target NAME    the target_name frames use (default: the handler's name)
      --config JSON    the config its init gets (default null)
      --handler-timeout-ms MS  a callback running longer breaks a rule (default 5000)
      --strict         exit 1 when a rule was broken (default: report, exit 0)
    """,
    "new": """
    usage: commhost new NAME --lang c|swift|rust [--dir DIR] [--source DIR]

    Writes a plugin project in DIR (default ./NAME) that builds as it is: one
    handler, NAME, keeping a count per comm ({"method":"increment","by":N}
    answered with {"method":"update","state":{"value":COUNT}}), what builds it
    (C: a Makefile and copies of comm_plugin.h and comm_json.h; Swift: a package
    depending on this tree's CommPluginKit by path; Rust: a cargo crate with no
    crates), a manifest.json that serves it, a try.script for commhost try, and a
    README saying what to run. NAME: a lowercase letter, then letters, digits or _.

    options:
      --lang LANG   c, swift or rust
      --dir DIR     where to write it (must not exist yet)
      --source DIR  the commhost source tree (default: found above this executable)
    """,
    "worker": """
    usage: commhost worker --fd N --library PATH [--address-space BYTES] [--cpu-seconds N]
                           [--open-files N] [--max-frame-bytes BYTES]

    Serves one library for a host over the socket at --fd (3 or higher). The host
    starts it for a target with "isolation": "process"; people do not.
    """,
    "help": """
    usage: commhost help [COMMAND]

    Prints the help of COMMAND (serve, stats, check, inspect, try, new, worker), or the
    list of commands.
    """,
]

/// The command being run, for usage errors.
nonisolated(unsafe) var currentCommand = "serve"
/// Prints `text` plus a newline to stdout or stderr.
func emit(_ text: String, toError: Bool = false) {
    let line = Array((text.hasSuffix("\n") ? text : text + "\n").utf8)
    // Output that cannot be written (a closed pipe) has nowhere else to go.
    line.withUnsafeBytes { try? FileSystem.writeAll(toError ? STDERR_FILENO : STDOUT_FILENO, $0) }
}

/// A usage error: one line naming the command and what was wrong, and where its help is.
func usageFailure(_ message: String) -> Int32 {
    let help = currentCommand == "help" ? "commhost help lists the commands" : "commhost help \(currentCommand)"
    emit("commhost \(currentCommand): \(message) (\(help))", toError: true)
    return 2
}

func runInspect(_ arguments: [String]) -> Int32 {
    do {
        let args = try Arguments(arguments, spec: .init(flags: ["json", "check"], maxPositionals: 1))
        guard let path = args.positionals.first else { return usageFailure("inspect needs a LIBRARY path") }
        let (output, code) = args.flag("check") ? InspectCheck.run(path: path, json: args.flag("json"))
                                                : Inspect.run(path: path, json: args.flag("json"))
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
        let args = try Arguments(arguments, spec: .init(options: ["manifest", "dialect", "log-level", "socket", "socket-mode", "trace"], flags: ["watch"]))
        var options = ServeOptions(manifestPath: args.value("manifest"), executableDirectory: executableDirectory())
        options.watch = args.flag("watch")
        if let path = args.value("trace") {
            guard !path.isEmpty else { return usageFailure("--trace needs a file, or - for stderr") }
            options.tracePath = path
        }
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

/// `commhost try`: reads the script (a file or stdin) and runs it (`TryRun`).
func runTry(_ arguments: [String]) -> Int32 {
    do {
        let args = try Arguments(arguments, spec: .init(options: ["handler", "target", "config", "handler-timeout-ms"], flags: ["strict"],
                                                        maxPositionals: 2))
        guard let library = args.positionals.first else { return usageFailure("try needs a LIBRARY path") }
        var options = TryRun.Options(libraryPath: library)
        options.handler = args.value("handler")
        options.target = args.value("target")
        options.strict = args.flag("strict")
        if let config = args.value("config") {
            do {
                _ = try JSONDocument(parsing: Array(config.utf8))
            } catch {
                return usageFailure("--config must be JSON text: \(error)")
            }
            options.config = config
        }
        if let text = args.value("handler-timeout-ms") {
            guard let milliseconds = Int(text), milliseconds > 0 else { return usageFailure("--handler-timeout-ms must be a positive number, not \"\(text)\"") }
            options.handlerTimeoutMilliseconds = milliseconds
        }
        let bytes: [UInt8]
        if args.positionals.count > 1 {
            switch FileSystem.readFile(args.positionals[1]) {
            case .success(let read):
                bytes = read
            case .failure(let failure):
                emit("commhost try: cannot read the script \(args.positionals[1]): \(failure)", toError: true)
                return 1
            }
        } else {
            bytes = readAll(STDIN_FILENO)
        }
        let script = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return TryRun.run(options, script: script, output: { emit($0) }, report: { emit($0, toError: true) })
    } catch {
        return usageFailure(error.message)
    }
}

/// Everything `fd` gives until its end.
func readAll(_ fd: Int32) -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && Errno.current == .interrupted { continue }
        if n <= 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
    }
}

/// `commhost new`: writes a plugin project (`NewProject`).
func runNew(_ arguments: [String]) -> Int32 {
    do {
        let args = try Arguments(arguments, spec: .init(options: ["lang", "dir", "source"], maxPositionals: 1))
        guard let name = args.positionals.first else { return usageFailure("new needs a NAME") }
        guard let text = args.value("lang"), let language = NewProject.Language(rawValue: text) else {
            return usageFailure("new needs --lang c, swift or rust" + (args.value("lang").map { ", not \"\($0)\"" } ?? ""))
        }
        guard let source = args.value("source") ?? NewProject.sourceTree(above: executableDirectory()) else {
            emit("commhost new: cannot find the commhost source tree above \(executableDirectory()) (it holds comm_plugin.h and CommPluginKit); give it with --source DIR", toError: true)
            return 1
        }
        let lines = try NewProject.write(name: name, language: language, directory: args.value("dir") ?? name, sourceTree: source)
        emit(lines.joined(separator: "\n"))
        return 0
    } catch let error as NewProject.Failure {
        emit("commhost new: \(error)", toError: true)
        return 1
    } catch let error as Arguments.UsageError {
        return usageFailure(error.message)
    } catch {
        return usageFailure("\(error)")
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
currentCommand = command
let wantsHelp = arguments.contains("--help") || arguments.contains("-h")
let code: Int32
switch command {
case _ where arguments.first == "--version" || command == "version":
    emit(Host.versionLine)
    code = 0
case "help":
    if let topic = arguments.first {
        if let text = commandHelp[topic] {
            emit(text)
            code = 0
        } else {
            code = usageFailure("no command \"\(topic)\"" + (KeySuggestion.closest(to: topic, among: commandHelp.keys.sorted()).map { "; did you mean \($0)?" } ?? ""))
        }
    } else {
        emit(overview)
        code = 0
    }
case _ where wantsHelp && CommandLine.arguments.dropFirst().first?.hasPrefix("-") == true:
    // `commhost --help`: no command named, so the overview.
    emit(overview)
    code = 0
case _ where wantsHelp && commandHelp[command] != nil:
    emit(commandHelp[command]!)
    code = 0
case "serve":
    code = runServe(arguments)
case "check":
    code = runCheck(arguments)
case "inspect":
    code = runInspect(arguments)
case "stats":
    code = runStats(arguments)
case "try":
    code = runTry(arguments)
case "new":
    code = runNew(arguments)
case "worker":
    code = runWorker(arguments)
default:
    currentCommand = "help"
    code = usageFailure("unknown command \"\(command)\"" + (KeySuggestion.closest(to: command, among: commandHelp.keys.sorted()).map { "; did you mean \($0)?" } ?? ""))
}
exit(code)
