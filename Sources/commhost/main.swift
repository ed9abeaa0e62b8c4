import CommHost
import Glibc

let usage = """
usage: commhost [serve] [--manifest FILE] [--dialect jupyter|shinywidgets] [--log-level LEVEL]
       commhost inspect [--json] LIBRARY
       commhost --help

commands:
  serve     speak the comm protocol on stdin/stdout (the default command)
  inspect   load one plugin library and print its name, version, ABI and handlers
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

var arguments = Array(CommandLine.arguments.dropFirst())
let command = arguments.first.flatMap { $0.hasPrefix("-") ? nil : $0 } ?? "serve"
if arguments.first == command { arguments.removeFirst() }
let code: Int32
switch command {
case _ where arguments.contains("--help") || arguments.contains("-h") || command == "help":
    emit(usage)
    code = 0
case "inspect":
    code = runInspect(arguments)
default:
    code = usageFailure("unknown command \"\(command)\"")
}
exit(code)
