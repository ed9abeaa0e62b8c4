import Glibc

/// `dispatch`: small comm_msg frames through commhost in this process,
/// against the Python comm package's CommManager doing the same work, and
/// against only splitting the bytes into lines and copying each out.
enum DispatchScenario {
    static func run(_ tools: Toolbox, _ settings: Settings) throws -> [Row] {
        let comms = Frames.commIDs(16)
        let opens = Frames.opens(comms, target: "bench.echo")
        let messages = Frames.updates(count: settings.dispatchMessages, comms: comms)
        let count = settings.dispatchMessages
        let meanBytes = (messages.count - count) / count

        // commhost
        let host = try InProcessHost(pluginPath: try tools.echoPlugin())
        defer { host.close() }
        host.feed(opens)
        guard countLines(host.output) == 0 else {
            throw ScenarioFailure("opening the echo comms produced output: \(String(decoding: host.output.prefix(300), as: UTF8.self))")
        }
        // One checked pass: every message gets exactly one comm_msg reply.
        let firstLines = Array(messages[..<(messages.firstIndex(of: 0x0A)! + 1)])
        host.feed(firstLines)
        let checkOutput = host.output
        guard countLines(checkOutput) == 1, checkOutput.starts(with: Array("{\"msg_type\":\"comm_msg\"".utf8)) else {
            throw ScenarioFailure("the echo plugin's reply is not one comm_msg: \(String(decoding: checkOutput.prefix(300), as: UTF8.self))")
        }
        // The Python comm package (baseline A) on the same bytes, in a peer
        // process kept running so its rounds interleave with ours.
        let file = try tools.writeFile("dispatch-frames.ndjson", opens + messages)
        let python = try PeerRounds(["dispatch", file], tools: tools)
        defer { python.finish() }

        var hostRates = Samples(), splitRates = Samples(), pythonRates = Samples()
        var sink: [UInt8] = []
        sink.reserveCapacity(1024 * 256)
        var checksum = 0
        for round in 0..<(settings.warmup + settings.rounds) {
            let t0 = Clock.nanos()
            let (lines, replyBytes) = host.feed(messages)
            let hostSeconds = Clock.seconds(since: t0)
            guard lines == count, replyBytes > count * meanBytes else {
                throw ScenarioFailure("commhost answered \(lines) lines with \(replyBytes) bytes; expected \(count) replies")
            }

            // Baseline B: split into lines and copy each out; nothing else.
            let t1 = Clock.nanos()
            var split = 0
            messages.withUnsafeBytes { raw in
                let base = raw.baseAddress!
                var start = 0
                while start < raw.count, let nl = memchr(base + start, 0x0A, raw.count - start) {
                    let stop = base.distance(to: UnsafeRawPointer(nl)) + 1
                    sink.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: stop - start))
                    start = stop
                    split += 1
                    if split % 1024 == 0 {
                        checksum &+= sink.count
                        sink.removeAll(keepingCapacity: true)
                    }
                }
            }
            checksum &+= sink.count
            sink.removeAll(keepingCapacity: true)
            let splitSeconds = Clock.seconds(since: t1)

            let pythonRate = try python.round()
            if round >= settings.warmup {
                hostRates.append(Double(count) / hostSeconds)
                splitRates.append(Double(split) / splitSeconds)
                pythonRates.append(pythonRate)
            }
        }
        guard checksum > 0 else { throw ScenarioFailure("the split baseline copied nothing") }

        let measure = "\(meanBytes)-byte comm_msg `update` frames, in-process, echo reply into memory"
        return [
            Row(scenario: "dispatch", measure: measure, unit: .perSecond, commhost: hostRates,
                baselineName: "A: Python `comm` 0.2.3 CommManager, echo handler", baseline: pythonRates,
                target: Target(text: "≥ 50×") { c, b in c >= 50 * b }),
            Row(scenario: "dispatch", measure: measure, unit: .perSecond, commhost: hostRates,
                baselineName: "B: Swift split into lines + copy out (the limit)", baseline: splitRates,
                target: .none),
        ]
    }

    /// commhost's side only, `count` messages after the opens: what a
    /// profiler should look at (`--profile-dispatch`).
    static func profile(count: Int) throws {
        let tools = try Toolbox()
        defer { tools.cleanUp() }
        let comms = Frames.commIDs(16)
        let host = try InProcessHost(pluginPath: try tools.echoPlugin())
        defer { host.close() }
        host.feed(Frames.opens(comms, target: "bench.echo"))
        let (lines, replyBytes) = host.feed(Frames.updates(count: count, comms: comms))
        print("fed \(lines) messages, \(replyBytes) reply bytes")
    }
}
