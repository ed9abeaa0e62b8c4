import Dispatch
import Foundation
import Glibc

/// `socket`: 1, 8 and 64 concurrent sessions over the Unix socket, each a
/// client keeping a window of messages in flight; against a C line-echo
/// server (one thread per connection) driven by the same clients.
enum SocketScenario {
    static let sessionCounts = [1, 8, 64]
    /// Messages each client keeps in flight.
    static let window = 16

    static func run(_ tools: Toolbox, _ settings: Settings) throws -> [Row] {
        let commhost = try tools.commhost()
        let help = try runProgram([commhost, "--help"])
        guard help.output.contains("--socket") else {
            throw ScenarioUnavailable(description: "this commhost has no --socket option (issue 6)")
        }
        let lineEcho = try tools.lineEcho()
        var rows: [Row] = []
        for sessions in sessionCounts {
            let hostPath = tools.workDirectory + "/commhost-\(sessions).sock"
            let echoPath = tools.workDirectory + "/echo-\(sessions).sock"
            let host = try measure(server: [commhost, "serve", "--manifest", Paths.defaultManifest, "--log-level", "error", "--socket", hostPath],
                                   path: hostPath, sessions: sessions, opens: true, tools: tools, settings: settings)
            let echo = try measure(server: [lineEcho, "--socket", echoPath], path: echoPath, sessions: sessions, opens: false,
                                   tools: tools, settings: settings)
            let baseline = "C line-echo socket server, same clients"
            rows.append(Row(scenario: "socket", measure: "\(sessions) session\(sessions == 1 ? "" : "s"), \(window) in flight each: total throughput",
                            unit: .perSecond, commhost: host.rates, baselineName: baseline, baseline: echo.rates, target: .none))
            rows.append(Row(scenario: "socket", measure: "\(sessions) session\(sessions == 1 ? "" : "s"): reply latency p99",
                            unit: .microseconds, commhost: host.p99, baselineName: baseline, baseline: echo.p99, target: .none))
        }
        return rows
    }

    /// Starts `server`, then per round connects `sessions` clients that
    /// each send their share of the messages with `window` in flight.
    static func measure(server: [String], path: String, sessions: Int, opens: Bool, tools: Toolbox,
                        settings: Settings) throws -> (rates: Samples, p99: Samples) {
        let child = try ChildProcess(server, stderrPath: tools.workDirectory + "/socket.log")
        defer { child.finish() }
        guard let probe = UnixClient.connect(path, timeout: 10) else {
            throw ScenarioFailure("\(server[0]) did not listen on \(path): \(readSmallFile(tools.workDirectory + "/socket.log")?.suffix(400) ?? "")")
        }
        close(probe)
        let perSession = max(settings.pipelinedMessages / 4 / sessions, 200)
        var rates = Samples(), p99 = Samples()
        for round in 0..<(settings.warmup + settings.rounds) {
            let results = Locked<[ClientOutcome]>([])
            let group = DispatchGroup()
            let ready = DispatchSemaphore(value: 0)
            let go = DispatchSemaphore(value: 0)
            for s in 0..<sessions {
                let thread = Thread {
                    let outcome = client(path: path, session: s, count: perSession, opens: opens, ready: ready, go: go)
                    results.withLock { $0.append(outcome) }
                    group.leave()
                }
                group.enter()
                thread.stackSize = 1 << 20
                thread.start()
            }
            for _ in 0..<sessions { ready.wait() }
            let start = Clock.nanos()
            for _ in 0..<sessions { go.signal() }
            group.wait()
            let seconds = Clock.seconds(since: start)
            let all = results.value
            guard all.allSatisfy(\.ok) else { throw ScenarioFailure("\(server[0]): a socket client lost its connection or replies") }
            if round >= settings.warmup {
                rates.append(Double(perSession * sessions) / seconds)
                p99.append(Samples(all.flatMap(\.latencies)).percentile(99))
            }
        }
        return (rates, p99)
    }

    /// One client session: connect, open its comms, wait for the start
    /// signal, then send `count` updates keeping `window` in flight.
    static func client(path: String, session: Int, count: Int, opens: Bool,
                       ready: DispatchSemaphore, go: DispatchSemaphore) -> ClientOutcome {
        guard let fd = UnixClient.connect(path, timeout: 10) else {
            ready.signal()
            return ClientOutcome(latencies: [], ok: false)
        }
        defer { close(fd) }
        let comms = (0..<4).map { "s\(session)c\($0)" }
        if opens {
            _ = Frames.opens(comms, target: "commhost.echo").withUnsafeBytes { ChildProcess.writeAll(fd, $0) }
        }
        let frames = (0..<64).map { Frames.update(commID: comms[$0 % comms.count], msgID: "m\($0)", value: $0) }
        let reader = LineReader(fd: fd, capacity: 1 << 16)
        var sendTimes = [UInt64](repeating: 0, count: count)
        var latencies: [Double] = []
        latencies.reserveCapacity(count)
        ready.signal()
        go.wait()
        var sent = 0, received = 0
        while received < count {
            while sent < count && sent - received < window {
                sendTimes[sent] = Clock.nanos()
                guard frames[sent % frames.count].withUnsafeBytes({ ChildProcess.writeAll(fd, $0) }) else { return ClientOutcome(latencies: latencies, ok: false) }
                sent += 1
            }
            guard reader.skipLines(1) else { return ClientOutcome(latencies: latencies, ok: false) }
            latencies.append(Double(Clock.nanos() - sendTimes[received]) / 1000)
            received += 1
        }
        return ClientOutcome(latencies: latencies, ok: true)
    }
}

/// What one socket client saw: each reply's latency (µs), and whether every reply came.
struct ClientOutcome: Sendable {
    var latencies: [Double]
    var ok: Bool
}
