import Glibc

/// `startup`: from launching the host to reading its first reply, with the
/// default manifest (both example plugins loaded); against the Python comm
/// peer answering the same two frames.
enum StartupScenario {
    static func run(_ tools: Toolbox, _ settings: Settings) throws -> [Row] {
        let commhost = try tools.commhost()
        let python = try tools.python()
        let frames = Frames.open(commID: "c1", target: "commhost.echo", msgID: "o1") + Frames.update(commID: "c1", msgID: "m1", value: 1)

        func launches(_ arguments: [String]) throws -> Samples {
            var times = Samples()
            for i in 0..<(settings.launches + 1) {
                let t0 = Clock.nanos()
                let child = try ChildProcess(arguments, stderrPath: tools.workDirectory + "/startup.log")
                let reader = LineReader(fd: child.stdout, capacity: 1 << 16)
                guard frames.withUnsafeBytes({ child.write($0) }), let line = reader.readLine() else {
                    child.finish()
                    throw ScenarioFailure("\(arguments[0]) gave no reply")
                }
                let ms = Double(Clock.nanos() - t0) / 1e6
                child.finish()
                guard String(decoding: line.prefix(80), as: UTF8.self).contains("comm_msg") else {
                    throw ScenarioFailure("\(arguments[0])'s first reply is not the echo: \(String(decoding: line.prefix(300), as: UTF8.self))")
                }
                if i > 0 { times.append(ms) }
            }
            return times
        }

        let host = try launches([commhost, "serve", "--manifest", Paths.defaultManifest, "--log-level", "error"])
        let peer = try launches([python, Paths.peerDirectory + "/comm_peer.py", "serve"])
        return [
            Row(scenario: "startup", measure: "launch to first reply (comm_open + comm_msg written at launch), default manifest", unit: .milliseconds,
                commhost: host, baselineName: "Python `comm` peer (venv python, imports comm)", baseline: peer,
                target: Target(text: "< 100 ms") { c, _ in c < 100 }),
        ]
    }
}
