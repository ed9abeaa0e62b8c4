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
        let help = try runProgram([commhost, "serve", "--help"])
        guard help.output.contains("--socket") else {
            throw ScenarioUnavailable(description: "this commhost's serve has no --socket option (issue 6)")
        }
        let lineEcho = try tools.lineEcho()
        var rows: [Row] = []
        for sessions in sessionCounts {
            let hostPath = tools.workDirectory + "/commhost-\(sessions).sock"
            let echoPath = tools.workDirectory + "/echo-\(sessions).sock"
            let hostServer = try startServer([commhost, "serve", "--manifest", Paths.defaultManifest, "--log-level", "error", "--socket", hostPath],
                                             path: hostPath, tools: tools)
            defer { hostServer.finish() }
            let echoServer = try startServer([lineEcho, "--socket", echoPath], path: echoPath, tools: tools)
            defer { echoServer.finish() }
            var hostRates = Samples(), hostP99 = Samples(), echoRates = Samples(), echoP99 = Samples()
            // Rounds alternate between the two servers, so both see the same machine load.
            for round in 0..<(settings.warmup + settings.rounds) {
                let host = try runRound(path: hostPath, sessions: sessions, opens: true, settings: settings)
                let echo = try runRound(path: echoPath, sessions: sessions, opens: false, settings: settings)
                if round >= settings.warmup {
                    hostRates.append(host.rate)
                    hostP99.append(host.p99)
                    echoRates.append(echo.rate)
                    echoP99.append(echo.p99)
                }
            }
            let baseline = "C line-echo socket server, same clients"
            rows.append(Row(scenario: "socket", measure: "\(sessions) session\(sessions == 1 ? "" : "s"), \(window) in flight each: total throughput",
                            unit: .perSecond, commhost: hostRates, baselineName: baseline, baseline: echoRates,
                            // Issue 14's target is for the most sessions.
                            target: sessions == sessionCounts.last ? Target(text: "≥ 0.8× line-echo") { c, b in c >= 0.8 * b } : .none))
            rows.append(Row(scenario: "socket", measure: "\(sessions) session\(sessions == 1 ? "" : "s"): reply latency p99",
                            unit: .microseconds, commhost: hostP99, baselineName: baseline, baseline: echoP99, target: .none))
        }
        return rows
    }

    /// Starts a socket server and waits until it accepts connections.
    static func startServer(_ arguments: [String], path: String, tools: Toolbox) throws -> ChildProcess {
        let log = tools.workDirectory + "/socket.log"
        let child = try ChildProcess(arguments, stderrPath: log)
        guard let probe = UnixClient.connect(path, timeout: 10) else {
            child.finish()
            throw ScenarioFailure("\(arguments[0]) did not listen on \(path): \(readSmallFile(log)?.suffix(400) ?? "")")
        }
        close(probe)
        return child
    }

    /// Connects `sessions` clients that each send their share of the
    /// round's messages with `window` in flight; returns the total rate and
    /// the p99 reply latency (µs).
    static func runRound(path: String, sessions: Int, opens: Bool, settings: Settings) throws -> (rate: Double, p99: Double) {
        let perSession = max(settings.pipelinedMessages / 4 / sessions, 200)
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
        guard all.allSatisfy(\.ok) else { throw ScenarioFailure("a socket client of \(path) lost its connection or replies") }
        return (Double(perSession * sessions) / seconds, Samples(all.flatMap(\.latencies)).percentile(99))
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
