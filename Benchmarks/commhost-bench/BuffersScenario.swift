import CommHost

/// `buffers`: a comm_msg carrying one binary buffer (base64 on the wire)
/// echoed through commhost in this process, against Python's base64 decode
/// + encode of the same bytes: a 1 MiB buffer, then a 64 MiB one.
enum BuffersScenario {
    static func run(_ tools: Toolbox, _ settings: Settings) throws -> [Row] {
        [
            try echo(size: 1 << 20, label: "1 MiB", messages: settings.bufferMessages, tools, settings,
                     target: Target(text: "≥ 10× Python's base64") { c, b in c >= 10 * b }),
            try echo(size: 64 << 20, label: "64 MiB", messages: settings.largeBufferMessages, tools, settings,
                     target: .none),
        ]
    }

    /// One row: `messages` frames, each carrying one buffer of `size` bytes, per round; the
    /// Python peer's base64 round trip of the same bytes, as often, between commhost's rounds.
    static func echo(size: Int, label: String, messages: Int, _ tools: Toolbox, _ settings: Settings,
                     target: Target) throws -> Row {
        let raw = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        let text = base64(raw)
        let frame = Frames.withBuffer(commID: "c1000", msgID: "b1", base64: text)
        var frames: [UInt8] = []
        frames.reserveCapacity(frame.count * messages)
        for _ in 0..<messages { frames += frame }

        // The frame is longer than the default 64 MiB limit when the buffer is 64 MiB.
        let host = try InProcessHost(pluginPath: try tools.echoPlugin(),
                                     limits: ManifestLimits(maxFrameBytes: max(64 << 20, 2 * frame.count)))
        defer { host.close() }
        host.feed(Frames.opens(["c1000"], target: "bench.echo"))
        host.feed(frame)
        let needle = Array(text.prefix(64))
        guard countLines(host.output) == 1, host.output.count > text.count,
              host.output.firstRange(of: needle) != nil else {
            throw ScenarioFailure("the \(label) buffer did not come back: \(String(decoding: host.output.prefix(300), as: UTF8.self))")
        }
        let python = try PeerRounds(["base64", "--size", "\(size)", "--iterations", "\(messages)"], tools: tools)
        defer { python.finish() }
        var rates = Samples(), pythonRates = Samples()
        for round in 0..<(settings.warmup + settings.rounds) {
            let t0 = Clock.nanos()
            let (lines, replyBytes) = host.feed(frames, takeEvery: 1)
            let seconds = Clock.seconds(since: t0)
            guard lines == messages, replyBytes > lines * text.count else {
                throw ScenarioFailure("commhost answered \(lines) \(label) buffer frames with \(replyBytes) bytes")
            }
            let pythonRate = try python.round()
            if round >= settings.warmup {
                rates.append(Double(size * lines) / seconds / 1e6)
                pythonRates.append(pythonRate)
            }
        }
        return Row(scenario: "buffers",
                   measure: "comm_msg with one \(label) buffer echoed in-process (MB of raw buffer per s; base64 in and out)",
                   unit: .megabytesPerSecond, commhost: rates,
                   baselineName: "Python `base64.b64decode` + `b64encode` of the same bytes", baseline: pythonRates,
                   target: target)
    }

    /// Standard base64 with padding, written here rather than taken from commhost, so the
    /// frames do not depend on the encoder under test.
    static func base64(_ bytes: [UInt8]) -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)])
            out.append(alphabet[Int(v & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let v = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)]]
            out += rest == 2 ? [alphabet[Int(v >> 6 & 63)], UInt8(ascii: "=")] : [UInt8(ascii: "="), UInt8(ascii: "=")]
        }
        return out
    }
}
