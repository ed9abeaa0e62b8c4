import Glibc

/// `commhost inspect --check LIBRARY`: loads the library as `inspect` does,
/// then runs each handler once through a throwaway session without a front
/// end (session_start, `comm_open` with `{}`, a `comm_msg` with `{}`,
/// `comm_close`, session_end) and reports what each step answered, what the
/// plugin sent, and every rule the host saw it break: each warning or error
/// the host logged meanwhile (bad handles, a callback past
/// `handler_timeout_ms`, …) other than the failing step itself, and a
/// failing callback that gave no error text. A failing step is reported,
/// not a broken rule: a plugin may refuse what it does not serve.
public enum InspectCheck {
    /// What one handler did.
    struct HandlerRun {
        var name: String
        /// One line per step: "open: ok", "comm_msg: failed: …".
        var steps: [String] = []
        /// Frames the plugin sent toward the client, by `msg_type`, while the comm was open.
        var sent: [String: Int] = [:]
        /// Rules the host saw broken, one line each.
        var breaches: [String] = []
    }

    /// Returns what to print and the exit code: 0 when no rule was broken,
    /// 1 otherwise (or when the library is refused).
    public static func run(path: String, json: Bool) -> (output: String, exitCode: Int32) {
        if let refusal = Inspect.unsafePathRefusal(path, json: json) { return (refusal, 1) }
        let exercise: RuleWatch.Exercise
        do {
            exercise = try RuleWatch.Exercise.load(path: path)
        } catch {
            return (json ? "{\"ok\":false,\"path\":\(JSONText.string(path)),\"error\":\(JSONText.string(error.reason))}" : error.reason, 1)
        }
        let (library, capture) = (exercise.library, exercise.watch)
        defer {
            library.retire()
            exercise.staging.removeAll()
        }
        var runs: [HandlerRun] = []
        for handler in library.handlers {
            runs.append(run(handler, capture: capture))
        }
        let ok = runs.allSatisfy(\.breaches.isEmpty)
        if json {
            let items = runs.map { run in
                "{\"handler\":\(JSONText.string(run.name)),\"steps\":[\(run.steps.map(JSONText.string).joined(separator: ","))]"
                    + ",\"sent\":{\(run.sent.sorted { $0.key < $1.key }.map { "\(JSONText.string($0.key)):\($0.value)" }.joined(separator: ","))}"
                    + ",\"breaches\":[\(run.breaches.map(JSONText.string).joined(separator: ","))]}"
            }
            return ("{\"ok\":\(ok),\"path\":\(JSONText.string(path)),\"name\":\(JSONText.string(library.name)),\"handlers\":[\(items.joined(separator: ","))]}",
                    ok ? 0 : 1)
        }
        var lines = ["path:     \(path)", "name:     \(library.name) \(library.version)"]
        for run in runs {
            lines.append("handler \(run.name):")
            for step in run.steps { lines.append("  \(step)") }
            let sent = run.sent.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
            lines.append("  sent: " + (sent.isEmpty ? "nothing" : sent.joined(separator: ", ")))
            for breach in run.breaches { lines.append("  rule broken: \(breach)") }
        }
        lines.append(ok ? "ok: no rule was broken" : "problems: see the rules broken above")
        return (lines.joined(separator: "\n"), ok ? 0 : 1)
    }

    /// One handler through one throwaway session.
    private static func run(_ handler: Handler, capture: RuleWatch) -> HandlerRun {
        var run = HandlerRun(name: handler.name)
        let target = "inspect.\(handler.name)"
        let manager = CommManager(targets: TargetTable([target: handler]), logger: capture.logger)
        capture.reset()
        let session = manager.makeSession()
        var output: [UInt8] = []
        _ = session.takeOutput(into: &output, wait: false)
        let atStart = frames(output)
        if !atStart.isEmpty { run.steps.append("session_start: ok, \(atStart.count) frame(s) sent before any input") }
        let commID = "inspect-\(handler.name)"
        // Each step's frame has the step's name as its msg_id.
        let steps: [(String, String)] = [
            ("open", #"{"msg_type":"comm_open","header":{"msg_id":"open"},"content":{"comm_id":"\#(commID)","target_name":"\#(target)","data":{}}}"#),
            ("comm_msg", #"{"msg_type":"comm_msg","header":{"msg_id":"comm_msg"},"content":{"comm_id":"\#(commID)","data":{}}}"#),
            ("close", #"{"msg_type":"comm_close","header":{"msg_id":"close"},"content":{"comm_id":"\#(commID)","data":{}}}"#),
        ]
        for (index, (step, frame)) in steps.enumerated() {
            if index > 0, run.steps.contains(where: { $0.hasPrefix("open: failed") }) {
                run.steps.append("\(step): not run (open failed)")
                continue
            }
            var bytes = Array(frame.utf8)
            bytes.withUnsafeMutableBytes { session.receive(UnsafeRawBufferPointer($0), line: index + 1) }
            _ = session.takeOutput(into: &output, wait: false)
            var outcome = "ok"
            for (type, object) in frames(output) {
                let ownID = object["content"]?["comm_id"]?.stringValue == commID
                if type == "error", object["parent_header"]?["msg_id"]?.stringValue == step {
                    outcome = "failed: " + (object["content"]?["evalue"]?.stringValue ?? "an error frame")
                } else if type == "comm_close", ownID, object["content"]?["data"]?["reason"] != nil {
                    // The host's own close (a failed open), not the plugin's.
                    continue
                } else {
                    run.sent[type, default: 0] += 1
                }
            }
            run.steps.append("\(step): \(outcome)")
        }
        manager.end(session, cause: .sessionEnded)
        run.steps.append("session_end: ok")
        run.breaches = capture.breaches()
        return run
    }

    /// The frames in `output`: each line's `msg_type` and the parsed object.
    private static func frames(_ output: [UInt8]) -> [(String, JSONDocument.Node)] {
        output.split(separator: 0x0A).compactMap { line in
            guard let document = try? JSONDocument(parsing: Array(line)), let type = document.root["msg_type"]?.stringValue else { return nil }
            return (type, document.root)
        }
    }
}
