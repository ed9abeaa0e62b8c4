import Dispatch
import Foundation
import Glibc
import Synchronization

/// `reload`: a C plugin with snapshot/restore (Benchmarks/peer/handoff_echo.c)
/// serving 1 000 open comms is rebuilt and swapped, again and again, while a
/// client sends at a steady rate. Measures how long inbound frames were held
/// (the host's `held_ms`, and what the client saw) and how many messages
/// went unanswered.
enum ReloadScenario {
    static let comms = 1_000
    /// Pause between two steady messages.
    static let intervalMicros: UInt32 = 250

    static func run(_ tools: Toolbox, _ settings: Settings) throws -> [Row] {
        let commhost = try tools.commhost()
        let help = try runProgram([commhost, "serve", "--help"])
        guard help.output.contains("--watch") else {
            throw ScenarioUnavailable(description: "this commhost's serve has no --watch option (issue 5)")
        }
        let dir = tools.workDirectory + "/reload"
        let plugins = dir + "/plugins"
        mkdir(dir, 0o700)
        mkdir(plugins, 0o700)
        let source = Paths.peerDirectory + "/handoff_echo.c"
        let versions = try (1...(settings.reloads + 1)).map {
            try tools.compileC(source, name: "handoff-v\($0).so", shared: true, defines: ["HANDOFF_VERSION=\($0)"])
        }
        let installed = plugins + "/handoff_echo.so"
        try install(versions[0], at: installed)
        let manifest = dir + "/commhost.json"
        _ = try tools.writeFile("reload/commhost.json", Array("""
            {"version": 1, "plugin_paths": ["plugins"],
             "targets": [{"target_name": "bench.handoff", "library": "handoff_echo.so", "handler": "echo"}],
             "reload": {"watch": true, "debounce_ms": 20}}
            """.utf8))
        chmod(manifest, 0o600)
        let log = dir + "/host.log"
        let child = try ChildProcess([commhost, "serve", "--manifest", manifest, "--watch", "--log-level", "info"], stderrPath: log)
        defer { child.finish() }

        let ids = (0..<comms).map { "h\($0)" }
        let stats = Array("{\"msg_type\":\"commhost_stats_request\",\"header\":{\"msg_id\":\"stats\"}}\n".utf8)
        let reader = LineReader(fd: child.stdout)
        guard (Frames.opens(ids, target: "bench.handoff") + stats).withUnsafeBytes({ child.write($0) }),
              let statsLine = reader.readLine(), String(decoding: statsLine, as: UTF8.self).contains("\"bench.handoff\":\(comms)") else {
            throw ScenarioFailure("commhost did not open \(comms) comms: \(readSmallFile(log)?.suffix(600) ?? "")")
        }

        let timeline = Timeline(capacity: 1_000_000)
        let group = DispatchGroup()
        let input = child.stdin
        DispatchQueue.global().async(group: group) {
            var seq = 0
            while !timeline.stopped, seq < timeline.capacity {
                let frame = Frames.update(commID: ids[seq % comms], msgID: "r\(seq)", value: seq)
                timeline.sent[seq] = Clock.nanos()
                guard frame.withUnsafeBytes({ ChildProcess.writeAll(input, $0) }) else { break }
                seq += 1
                timeline.sentCount.store(seq, ordering: .releasing)
                usleep(intervalMicros)
            }
        }
        let replies = ReplyCounter()
        let output = child.stdout
        DispatchQueue.global().async(group: group) {
            // Nothing follows the stats reply until the steady messages, so a fresh reader loses nothing.
            let replyReader = LineReader(fd: output)
            while let line = replyReader.readLine() {
                guard let seq = parentSequence(line) else { continue }
                if seq < timeline.capacity, timeline.received[seq] == 0 {
                    timeline.received[seq] = Clock.nanos()
                    replies.count.add(1, ordering: .releasing)
                }
            }
        }

        usleep(300_000)
        var windows: [(start: UInt64, end: UInt64)] = []
        for version in versions.dropFirst() {
            let before = countReloads(log)
            let start = Clock.nanos()
            try install(version, at: installed)
            let deadline = Clock.nanos() + 10_000_000_000
            while countReloads(log) == before {
                if let failure = reloadFailure(log) { throw ScenarioFailure("reload failed: \(failure)") }
                guard Clock.nanos() < deadline else { throw ScenarioFailure("no reload within 10 s: \(readSmallFile(log)?.suffix(600) ?? "")") }
                usleep(1000)
            }
            windows.append((start, Clock.nanos()))
            usleep(150_000)
        }
        timeline.stop()
        let sent = timeline.sentCount.load(ordering: .acquiring)
        let waitUntil = Clock.nanos() + 5_000_000_000
        while replies.count.load(ordering: .acquiring) < sent && Clock.nanos() < waitUntil { usleep(1000) }
        let received = replies.count.load(ordering: .acquiring)
        child.closeInput()
        group.wait()

        let logText = readSmallFile(log) ?? ""
        let reloadLines = logText.split(separator: "\n").filter { $0.contains("\"reloaded library\"") }
        let held = Samples(reloadLines.compactMap { number(after: "\"held_ms\":", in: $0) })
        let handedOff = reloadLines.compactMap { number(after: "\"handed_off\":", in: $0) }
        guard held.values.count == settings.reloads, handedOff.allSatisfy({ Int($0) == comms }) else {
            throw ScenarioFailure("expected \(settings.reloads) reloads each handing off \(comms) comms; the log says: \(reloadLines.joined(separator: "\n"))")
        }
        var worstInWindow = Samples()
        var steady = Samples()
        for w in windows {
            var worst = 0.0
            for seq in 0..<sent where timeline.sent[seq] >= w.start && timeline.sent[seq] <= w.end && timeline.received[seq] != 0 {
                worst = max(worst, Double(timeline.received[seq] - timeline.sent[seq]) / 1e6)
            }
            worstInWindow.append(worst)
        }
        for seq in 0..<sent where timeline.received[seq] != 0 {
            let t = timeline.sent[seq]
            if !windows.contains(where: { t >= $0.start && t <= $0.end + 50_000_000 }) {
                steady.append(Double(timeline.received[seq] - t) / 1e6)
            }
        }
        let lost = sent - received
        let steadyName = "the same client's reply latency outside reloads"
        return [
            Row(scenario: "reload", measure: "inbound frames held during the swap (host's held_ms), p50 over \(settings.reloads) reloads of 1 000 handed-off comms",
                unit: .milliseconds, commhost: held, baselineName: steadyName + ", p50", baseline: Samples([steady.median]),
                target: Target(text: "< 5 ms") { c, _ in c < 5 }),
            Row(scenario: "reload", measure: "inbound frames held during the swap (host's held_ms), max", unit: .milliseconds,
                commhost: Samples([held.max]), baselineName: steadyName + ", max", baseline: Samples([steady.max]), target: .none),
            Row(scenario: "reload", measure: "worst reply latency the client saw during a reload, p50 over reloads", unit: .milliseconds,
                commhost: worstInWindow, baselineName: steadyName + ", p99", baseline: Samples([steady.percentile(99)]), target: .none),
            Row(scenario: "reload", measure: "messages lost (sent at \(1_000_000 / Int(intervalMicros))/s target rate, never answered)", unit: .count,
                commhost: Samples([Double(lost)]), baselineName: "messages sent", baseline: Samples([Double(sent)]),
                target: Target(text: "= 0") { c, _ in c == 0 }),
        ]
    }

    /// Puts `source` at `path` the way a build does: a new file renamed over the old.
    static func install(_ source: String, at path: String) throws {
        guard let bytes = readFileBytes(source) else { throw ScenarioFailure("cannot read \(source)") }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0, bytes.withUnsafeBytes({ ChildProcess.writeAll(fd, $0) }) else { throw ScenarioFailure("cannot write \(temporary)") }
        close(fd)
        guard rename(temporary, path) == 0 else { throw ScenarioFailure("cannot rename \(temporary): \(String(cString: strerror(errno)))") }
    }

    static func countReloads(_ log: String) -> Int {
        (readSmallFile(log) ?? "").components(separatedBy: "\"reloaded library\"").count - 1
    }

    static func reloadFailure(_ log: String) -> String? {
        (readSmallFile(log) ?? "").split(separator: "\n").first { $0.contains("reload failed") }.map(String.init)
    }

    /// The number after `key` in a JSON log line.
    static func number(after key: String, in line: Substring) -> Double? {
        guard let range = line.range(of: key) else { return nil }
        let rest = line[range.upperBound...].prefix { "0123456789.-eE".contains($0) }
        return Double(rest)
    }

    /// N from `"parent_header":{"msg_id":"rN"` in a reply.
    static func parentSequence(_ line: [UInt8]) -> Int? {
        let key = Array("\"parent_header\":{\"msg_id\":\"r".utf8)
        guard let range = line.firstRange(of: key) else { return nil }
        var value = 0
        var i = range.upperBound
        while i < line.count, line[i] >= 0x30, line[i] <= 0x39 {
            value = value * 10 + Int(line[i] - 0x30)
            i += 1
        }
        return i > range.upperBound ? value : nil
    }
}

/// Send and receive times of the steady client's messages, by sequence
/// number.
final class Timeline: @unchecked Sendable {
    // @unchecked: `sent[i]` is written only by the sender thread and
    // `received[i]` only by the reader thread; the scenario reads both after
    // it has stopped the sender and waited for the reader (group.wait).
    let capacity: Int
    let sent: UnsafeMutablePointer<UInt64>
    let received: UnsafeMutablePointer<UInt64>
    let sentCount = Atomic<Int>(0)
    private let stopFlag = Atomic<Bool>(false)

    init(capacity: Int) {
        self.capacity = capacity
        sent = .allocate(capacity: capacity)
        sent.initialize(repeating: 0, count: capacity)
        received = .allocate(capacity: capacity)
        received.initialize(repeating: 0, count: capacity)
    }

    var stopped: Bool { stopFlag.load(ordering: .acquiring) }
    func stop() { stopFlag.store(true, ordering: .releasing) }

    deinit {
        sent.deallocate()
        received.deallocate()
    }
}

/// Replies counted by the reader thread.
final class ReplyCounter: Sendable {
    let count = Atomic<Int>(0)
}

/// A whole file's bytes.
func readFileBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
    }
}
