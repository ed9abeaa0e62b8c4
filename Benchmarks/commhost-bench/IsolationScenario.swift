import Glibc

/// `isolation`: the C echo served by a `commhost worker` child process
/// (`"isolation": "process"`) beside the same echo loaded in-process, in one
/// run: in this process (the dispatch path), through `commhost serve` over
/// pipes (the stdio path) and over its Unix socket with 64 sessions. Each isolated figure is judged against its
/// in-process twin.
enum IsolationScenario {
    static func run(_ tools: Toolbox, _ settings: Settings) throws -> [Row] {
        let commhost = try tools.commhost()
        let echo = try tools.echoPlugin()
        let comms = Frames.commIDs(16)
        let count = max(settings.dispatchMessages / 10, 1000)
        let opens = Frames.opens(comms, target: "bench.echo")
        let messages = Frames.updates(count: count, comms: comms)

        // Dispatch: rounds alternate between the two hosts.
        let inProcess = try InProcessHost(pluginPath: echo)
        defer { inProcess.close() }
        let isolated = try InProcessHost(pluginPath: echo, worker: commhost)
        defer { isolated.close() }
        for host in [inProcess, isolated] { host.feed(opens) }
        var inRates = Samples(), isoRates = Samples()
        for round in 0..<(settings.warmup + settings.rounds) {
            for (host, index) in [(inProcess, 0), (isolated, 1)] {
                let t0 = Clock.nanos()
                let (lines, replyBytes) = host.feed(messages, awaitingReplies: count)
                let seconds = Clock.seconds(since: t0)
                guard lines == count, replyBytes > count * 100 else {
                    throw ScenarioFailure("\(index == 0 ? "in-process" : "isolated") echo answered \(lines) lines with \(replyBytes) bytes")
                }
                if round >= settings.warmup { index == 0 ? inRates.append(Double(count) / seconds) : isoRates.append(Double(count) / seconds) }
            }
        }

        // Stdio: two `commhost serve` processes, one manifest each.
        func manifest(_ name: String, isolation: String) throws -> String {
            let directory = tools.workDirectory
            let text = """
            {"version": 1, "plugin_paths": ["\(directory)"],
             "targets": [{"target_name": "commhost.echo", "library": "\(echo)", "handler": "echo", "isolation": "\(isolation)"}]}
            """
            let path = try tools.writeFile(name, Array(text.utf8))
            chmod(path, 0o600)
            return path
        }
        let pipelined = max(settings.pipelinedMessages / 10, 1000)
        let payload = Frames.updates(count: pipelined, comms: comms)
        let singles = (0..<256).map { Frames.update(commID: comms[$0 % comms.count], msgID: "p\($0)", value: $0) }
        struct Contender {
            var child: ChildProcess
            var reader: LineReader
            var rates = Samples(), p50 = Samples()
        }
        func start(_ manifestPath: String) throws -> Contender {
            let child = try ChildProcess([commhost, "serve", "--manifest", manifestPath, "--log-level", "error"],
                                         stderrPath: tools.workDirectory + "/isolation.log")
            let open = Frames.opens(comms, target: "commhost.echo")
            guard open.withUnsafeBytes({ child.write($0) }) else { throw ScenarioFailure("commhost closed its input") }
            return Contender(child: child, reader: LineReader(fd: child.stdout))
        }
        let localManifest = try manifest("isolation-in-process.json", isolation: "in-process")
        let workerManifest = try manifest("isolation-process.json", isolation: "process")
        var local = try start(localManifest)
        defer { local.child.finish() }
        var worker = try start(workerManifest)
        defer { worker.child.finish() }
        for round in 0..<(settings.warmup + settings.rounds) {
            for index in 0..<2 {
                var c = index == 0 ? local : worker
                let rate = try PipeDrivers.pipelined(input: c.child.stdin, reader: c.reader, payload: payload, count: pipelined)
                let rtts = try PipeDrivers.pingPong(input: c.child.stdin, reader: c.reader, frames: singles, count: settings.pingPongs)
                if round >= settings.warmup {
                    c.rates.append(rate)
                    c.p50.append(rtts.percentile(50))
                }
                if index == 0 { local = c } else { worker = c }
            }
        }

        // Socket: 64 sessions, each a client keeping 16 messages in flight,
        // against `commhost serve --socket` with either manifest.
        let sessions = SocketScenario.sessionCounts.max() ?? 64
        func socketServer(_ manifestPath: String, _ name: String) throws -> (ChildProcess, String) {
            let path = tools.workDirectory + "/" + name
            let child = try SocketScenario.startServer([commhost, "serve", "--manifest", manifestPath, "--log-level", "error", "--socket", path],
                                                       path: path, tools: tools)
            return (child, path)
        }
        let (localServer, localSocket) = try socketServer(localManifest, "isolation-in-process.sock")
        defer { localServer.finish() }
        let (workerServer, workerSocket) = try socketServer(workerManifest, "isolation-process.sock")
        defer { workerServer.finish() }
        var localSocketRates = Samples(), workerSocketRates = Samples()
        for round in 0..<(settings.warmup + settings.rounds) {
            let inRound = try SocketScenario.runRound(path: localSocket, sessions: sessions, opens: true, settings: settings)
            let isoRound = try SocketScenario.runRound(path: workerSocket, sessions: sessions, opens: true, settings: settings)
            if round >= settings.warmup {
                localSocketRates.append(inRound.rate)
                workerSocketRates.append(isoRound.rate)
            }
        }

        let twin = "the same echo in-process"
        return [
            Row(scenario: "isolation", measure: "dispatch: comm_msg frames in this process, echo served by a worker", unit: .perSecond,
                commhost: isoRates, baselineName: twin, baseline: inRates,
                target: Target(text: "≥ ½ of in-process") { c, b in c >= b / 2 }),
            Row(scenario: "isolation", measure: "stdio: pipelined throughput, \(pipelined) update frames per round", unit: .perSecond,
                commhost: worker.rates, baselineName: twin, baseline: local.rates,
                target: Target(text: "≥ ½ of in-process") { c, b in c >= b / 2 }),
            Row(scenario: "isolation", measure: "stdio: ping-pong round trip, p50", unit: .microseconds,
                commhost: worker.p50, baselineName: twin, baseline: local.p50,
                target: Target(text: "≤ 2× in-process") { c, b in c <= 2 * b }),
            Row(scenario: "isolation", measure: "socket: \(sessions) sessions, \(SocketScenario.window) in flight each: total throughput",
                unit: .perSecond, commhost: workerSocketRates, baselineName: twin, baseline: localSocketRates,
                target: Target(text: "≥ ½ of in-process") { c, b in c >= b / 2 }),
        ]
    }
}
