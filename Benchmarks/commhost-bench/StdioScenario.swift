import Glibc

/// `stdio`: the real `commhost serve` through pipes, against a plain C
/// line-echo process driven by the same client through the same pipes.
enum StdioScenario {
    static func run(_ tools: Toolbox, _ settings: Settings) throws -> [Row] {
        let commhost = try tools.commhost()
        let lineEcho = try tools.lineEcho()
        let comms = Frames.commIDs(16)
        let payload = Frames.updates(count: settings.pipelinedMessages, comms: comms)
        let singles = (0..<256).map { Frames.update(commID: comms[$0 % comms.count], msgID: "p\($0)", value: $0) }

        /// One contender: a child process and the reader of its replies.
        struct Contender {
            var child: ChildProcess
            var reader: LineReader
            var rates = Samples(), p50 = Samples(), p99 = Samples()
        }
        func start(_ arguments: [String], opens: [UInt8]) throws -> Contender {
            let child = try ChildProcess(arguments, stderrPath: tools.workDirectory + "/stdio.log")
            if !opens.isEmpty {
                guard opens.withUnsafeBytes({ child.write($0) }) else { throw ScenarioFailure("\(arguments[0]) closed its input") }
            }
            return Contender(child: child, reader: LineReader(fd: child.stdout))
        }
        var host = try start([commhost, "serve", "--manifest", Paths.defaultManifest, "--log-level", "error"],
                             opens: Frames.opens(comms, target: "commhost.echo"))
        defer { host.child.finish() }
        var echo = try start([lineEcho], opens: [])
        defer { echo.child.finish() }
        // Rounds alternate between the two, so both see the same machine load.
        for round in 0..<(settings.warmup + settings.rounds) {
            for index in 0..<2 {
                var c = index == 0 ? host : echo
                let rate = try PipeDrivers.pipelined(input: c.child.stdin, reader: c.reader, payload: payload, count: settings.pipelinedMessages)
                let rtts = try PipeDrivers.pingPong(input: c.child.stdin, reader: c.reader, frames: singles, count: settings.pingPongs)
                if round >= settings.warmup {
                    c.rates.append(rate)
                    c.p50.append(rtts.percentile(50))
                    c.p99.append(rtts.percentile(99))
                }
                if index == 0 { host = c } else { echo = c }
            }
        }

        let baseline = "C line-echo process, same client and pipes"
        return [
            Row(scenario: "stdio", measure: "pipelined throughput, \(settings.pipelinedMessages) update frames per round", unit: .perSecond,
                commhost: host.rates, baselineName: baseline, baseline: echo.rates,
                target: Target(text: "≥ ⅓ of line-echo") { c, b in c >= b / 3 }),
            Row(scenario: "stdio", measure: "ping-pong round trip, p50", unit: .microseconds,
                commhost: host.p50, baselineName: baseline, baseline: echo.p50,
                target: Target(text: "≤ 1.1× line-echo") { c, b in c <= 1.1 * b }),
            Row(scenario: "stdio", measure: "ping-pong round trip, p99", unit: .microseconds,
                commhost: host.p99, baselineName: baseline, baseline: echo.p99, target: .none),
        ]
    }
}
