import Glibc

/// `comms`: how much the real host grows per open comm (100 000 comms in one
/// session, echo plugin, so the host's own bookkeeping), and its RSS at
/// idle; against the Python comm package holding as many comms, and its RSS
/// at idle. The idle RSS is also measured with only the C echo plugin
/// loaded, which shows what the default manifest's Swift plugin (the Swift
/// Counter, built with CommPluginKit) adds.
enum CommsScenario {
    static func run(_ tools: Toolbox, _ settings: Settings) throws -> [Row] {
        let commhost = try tools.commhost()
        let count = settings.comms
        var opens: [UInt8] = []
        opens.reserveCapacity(count * 160)
        for i in 0..<count {
            opens += Frames.open(commID: "c" + String(1_000_000 + i).dropFirst(), target: "commhost.echo", msgID: "o\(i)")
        }
        let stats = Array("{\"msg_type\":\"commhost_stats_request\",\"header\":{\"msg_id\":\"stats\"}}\n".utf8)
        let echoOnly = try tools.writeFile("echo-only.json", Array("""
            {"version": 1, "targets": [{"target_name": "commhost.echo", "library": "libEchoPlugin.so", "handler": "echo"}]}
            """.utf8))

        var perComm = Samples(), idle = Samples(), idleEchoOnly = Samples()
        for _ in 0..<settings.memoryRounds {
            idleEchoOnly.append(Double(try idleBytes(commhost, manifest: echoOnly, stats: stats, log: tools.workDirectory + "/comms.log")))
            let child = try ChildProcess([commhost, "serve", "--manifest", Paths.defaultManifest, "--log-level", "error"],
                                         stderrPath: tools.workDirectory + "/comms.log")
            defer { child.finish() }
            let reader = LineReader(fd: child.stdout)
            func statsReply() throws -> String {
                guard stats.withUnsafeBytes({ child.write($0) }), let line = reader.readLine() else {
                    throw ScenarioFailure("commhost stopped answering")
                }
                return String(decoding: line, as: UTF8.self)
            }
            _ = try statsReply()
            usleep(200_000)
            guard let idleBytes = child.residentBytes() else { throw ScenarioFailure("cannot read commhost's RSS") }
            guard opens.withUnsafeBytes({ child.write($0) }) else { throw ScenarioFailure("commhost closed its input") }
            let reply = try statsReply()
            guard reply.contains("\"commhost.echo\":\(count)") else {
                throw ScenarioFailure("after \(count) opens the stats reply is not \(count) open comms: \(reply.prefix(300))")
            }
            guard let fullBytes = child.residentBytes() else { throw ScenarioFailure("cannot read commhost's RSS") }
            idle.append(Double(idleBytes))
            perComm.append(Double(fullBytes - idleBytes) / Double(count))
        }

        let peer = try PeerOutput(try tools.runPeer(["memory", "--comms", "\(count)"]))
        return [
            Row(scenario: "comms", measure: "memory per open comm (RSS growth / comms), \(count) comms in one session", unit: .bytes,
                commhost: perComm, baselineName: "Python `comm` CommManager holding as many BaseComm objects",
                baseline: Samples([try peer.number("per_comm")]),
                target: Target(text: "< 256 B") { c, _ in c < 256 }),
            Row(scenario: "comms", measure: "RSS at idle (default manifest loaded, one session)", unit: .bytes,
                commhost: idle, baselineName: "Python peer at idle (`comm` imported, manager made)",
                baseline: Samples([try peer.number("idle_rss")]), target: Target(text: "≤ Python peer's") { c, b in c <= b }),
            Row(scenario: "comms", measure: "RSS at idle, C echo plugin only (no Swift plugin)", unit: .bytes,
                commhost: idleEchoOnly, baselineName: "Python peer at idle (`comm` imported, manager made)",
                baseline: Samples([try peer.number("idle_rss")]), target: .none),
        ]
    }

    /// The RSS of `commhost serve --manifest manifest` once it has answered
    /// one stats request and sat idle for 200 ms.
    private static func idleBytes(_ commhost: String, manifest: String, stats: [UInt8], log: String) throws -> Int {
        let child = try ChildProcess([commhost, "serve", "--manifest", manifest, "--log-level", "error"], stderrPath: log)
        defer { child.finish() }
        guard stats.withUnsafeBytes({ child.write($0) }), LineReader(fd: child.stdout).readLine() != nil else {
            throw ScenarioFailure("commhost stopped answering")
        }
        usleep(200_000)
        guard let bytes = child.residentBytes() else { throw ScenarioFailure("cannot read commhost's RSS") }
        return bytes
    }
}
