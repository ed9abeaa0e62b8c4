import Glibc

/// `commhost try LIBRARY [SCRIPT]`: one library, no manifest, one session
/// driven by a script, every frame the host writes printed as it comes,
/// with ids that repeat from run to run (so the output can be compared with
/// a golden file), and every ABI rule the plugin breaks reported as it goes
/// (`RuleWatch`).
///
/// A script line is a frame (a line starting with `{`, sent as it is) or a
/// shortcut for people typing: `open [DATA]` opens comm `c1`, `c2`, … for
/// the target; `msg [DATA]` and `close [DATA]` act on the comm opened last;
/// `info` asks for comm_info; `wait MS` waits (for timers) and prints what
/// came; `end` ends the session. DATA is a JSON object (default `{}`).
/// Empty lines and lines starting with `#` are skipped. Frames get
/// `header.msg_id` `line-N` (N, the script line).
public enum TryRun {
    /// What `try` was asked to do.
    public struct Options {
        public var libraryPath: String
        /// The handler to serve (default: the library's first).
        public var handler: String?
        /// The target name frames and shortcuts use (default: the handler's name).
        public var target: String?
        /// The config JSON text init gets (default `null`).
        public var config = "null"
        /// `handler_timeout_ms`: a callback running longer breaks a rule.
        public var handlerTimeoutMilliseconds = 5000
        /// Every broken rule makes the exit status 1.
        public var strict = false

        public init(libraryPath: String) {
            self.libraryPath = libraryPath
        }
    }

    /// Runs `script`; `output` gets each frame the host writes (one line
    /// each), `report` each note and broken rule. Returns the exit status:
    /// 0, or 1 when the library cannot be loaded or (with `strict`) a rule was broken.
    public static func run(_ options: Options, script: [String], output: (String) -> Void, report: (String) -> Void) -> Int32 {
        let exercise: RuleWatch.Exercise
        do {
            exercise = try RuleWatch.Exercise.load(path: options.libraryPath, config: Array(options.config.utf8))
        } catch {
            report("commhost try: \(error.reason)")
            return 1
        }
        let (library, watch) = (exercise.library, exercise.watch)
        defer { exercise.staging.removeAll() }
        var retired = false
        defer { if !retired { library.retire() } }
        let handlerName = options.handler ?? library.handlers.first?.name ?? ""
        guard let handler = library.handler(named: handlerName) else {
            report("commhost try: \(library.name) has no handler \"\(handlerName)\" (it has \(library.handlers.map(\.name).joined(separator: ", ")))")
            return 1
        }
        library.slowCallbackNanoseconds = UInt64(max(options.handlerTimeoutMilliseconds, 1)) * 1_000_000
        let target = options.target ?? handler.name
        let manager = CommManager(targets: TargetTable([target: handler]), logger: watch.logger, repeatableIDs: true)
        let commsBefore = CommHandle.table.count

        var broken = 0
        var buffer: [UInt8] = []
        func flush(_ session: Session, at place: String) {
            _ = session.takeOutput(into: &buffer, wait: false)
            for line in buffer.split(separator: 0x0A) { output(String(decoding: line, as: UTF8.self)) }
            for breach in watch.breaches() {
                report("commhost try: \(place): rule broken: \(breach)")
                broken += 1
            }
            watch.reset()
        }

        let session = manager.makeSession()
        flush(session, at: "session_start")
        var opened = 0
        var current: String?
        lines: for (index, raw) in script.enumerated() {
            let number = index + 1
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            let frame: String
            switch Shortcut.parse(line) {
            case .frame(let text):
                frame = text
            case .end:
                break lines
            case .wait(let milliseconds):
                usleep(UInt32(min(milliseconds, 60_000)) * 1000)
                flush(session, at: "line \(number)")
                continue
            case .open(let data):
                opened += 1
                current = "c\(opened)"
                frame = #"{"msg_type":"comm_open","header":{"msg_id":"line-\#(number)"},"content":{"comm_id":"\#(current!)","target_name":\#(JSONText.string(target)),"data":\#(data)}}"#
            case .message(let data), .close(let data):
                guard let comm = current else {
                    report("commhost try: line \(number): \(line.split(separator: " ").first ?? "") before any open; skipped")
                    continue
                }
                let type = line.hasPrefix("msg") ? "comm_msg" : "comm_close"
                frame = #"{"msg_type":"\#(type)","header":{"msg_id":"line-\#(number)"},"content":{"comm_id":"\#(comm)","data":\#(data)}}"#
            case .info:
                frame = #"{"msg_type":"comm_info_request","header":{"msg_id":"line-\#(number)"},"content":{}}"#
            case .unknown(let word):
                report("commhost try: line \(number): \"\(word)\" is not a frame or a shortcut (open, msg, close, info, wait MS, end); skipped")
                continue
            }
            var bytes = Array(frame.utf8)
            bytes.withUnsafeMutableBytes { session.receive(UnsafeRawBufferPointer($0), line: number) }
            flush(session, at: "line \(number)")
        }
        manager.end(session, cause: .sessionEnded)
        flush(session, at: "session end")
        library.retire()
        retired = true
        for breach in watch.breaches() {
            report("commhost try: deinit: rule broken: \(breach)")
            broken += 1
        }
        let held = CommHandle.table.count - commsBefore
        if held > 0 {
            report("commhost try: deinit: rule broken: the plugin still holds \(held) comm reference\(held == 1 ? "" : "s") after its session ended and deinit ran (release_comm every reference open or retain_comm gave it)")
            broken += 1
        }
        if broken > 0 { report("commhost try: \(broken) rule\(broken == 1 ? "" : "s") broken") }
        return options.strict && broken > 0 ? 1 : 0
    }

    private enum Shortcut {
        case frame(String), open(String), message(String), close(String), info, wait(Int), end, unknown(String)

        static func parse(_ line: String) -> Shortcut {
            if line.hasPrefix("{") { return .frame(line) }
            let word = String(line.prefix { $0 != " " })
            let rest = String(line.dropFirst(word.count)).trimmingSpaces
            let data = rest.isEmpty ? "{}" : rest
            switch word {
            case "open": return .open(data)
            case "msg": return .message(data)
            case "close": return .close(data)
            case "info": return .info
            case "end": return .end
            case "wait": return Int(rest).map { .wait(max($0, 0)) } ?? .unknown(line)
            default: return .unknown(word)
            }
        }
    }
}

private extension String {
    var trimmingSpaces: String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" || first == "\r" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text.removeLast() }
        return String(text)
    }
}
