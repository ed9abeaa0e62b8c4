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

        func measure(_ arguments: [String], opens: [UInt8]) throws -> (rates: Samples, p50: Samples, p99: Samples) {
            let child = try ChildProcess(arguments, stderrPath: tools.workDirectory + "/stdio.log")
            defer { child.finish() }
            let reader = LineReader(fd: child.stdout)
            if !opens.isEmpty {
                guard opens.withUnsafeBytes({ child.write($0) }) else { throw ScenarioFailure("\(arguments[0]) closed its input") }
            }
            var rates = Samples(), p50 = Samples(), p99 = Samples()
            for round in 0..<(settings.warmup + settings.rounds) {
                let rate = try PipeDrivers.pipelined(input: child.stdin, reader: reader, payload: payload, count: settings.pipelinedMessages)
                let rtts = try PipeDrivers.pingPong(input: child.stdin, reader: reader, frames: singles, count: settings.pingPongs)
                if round >= settings.warmup {
                    rates.append(rate)
                    p50.append(rtts.percentile(50))
                    p99.append(rtts.percentile(99))
                }
            }
            return (rates, p50, p99)
        }

        let host = try measure([commhost, "serve", "--manifest", Paths.defaultManifest, "--log-level", "error"],
                               opens: Frames.opens(comms, target: "commhost.echo"))
        let echo = try measure([lineEcho], opens: [])
        let baseline = "C line-echo process, same client and pipes"
        return [
            Row(scenario: "stdio", measure: "pipelined throughput, \(settings.pipelinedMessages) update frames per round", unit: .perSecond,
                commhost: host.rates, baselineName: baseline, baseline: echo.rates,
                target: Target(text: "≥ ⅓ of line-echo") { c, b in c >= b / 3 }),
            Row(scenario: "stdio", measure: "ping-pong round trip, p50", unit: .microseconds,
                commhost: host.p50, baselineName: baseline, baseline: echo.p50,
                target: Target(text: "< 50 µs") { c, _ in c < 50 }),
            Row(scenario: "stdio", measure: "ping-pong round trip, p99", unit: .microseconds,
                commhost: host.p99, baselineName: baseline, baseline: echo.p99, target: .none),
        ]
    }
}
