import Foundation

/// The Python peer kept running in `--interactive` mode: each `round()`
/// asks it for one more measured round, so the caller can interleave its
/// own rounds with the baseline's and both see the same machine load.
final class PeerRounds {
    private let child: ChildProcess
    private let reader: LineReader
    private let log: String

    init(_ arguments: [String], tools: Toolbox) throws {
        log = tools.workDirectory + "/peer.log"
        child = try ChildProcess([try tools.python(), Paths.peerDirectory + "/comm_peer.py"] + arguments + ["--interactive"], stderrPath: log)
        reader = LineReader(fd: child.stdout, capacity: 1 << 12)
    }

    /// Runs one round in the peer and returns its rate.
    func round() throws -> Double {
        guard Array("round\n".utf8).withUnsafeBytes({ child.write($0) }), let line = reader.readLine() else {
            throw ScenarioFailure("the Python peer stopped: \(readSmallFile(log)?.suffix(600) ?? "")")
        }
        return try PeerOutput(String(decoding: line, as: UTF8.self)).number("rate")
    }

    /// Ends the peer.
    func finish() {
        child.finish()
    }
}
