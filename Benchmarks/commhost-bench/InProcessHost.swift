import CommHost
import Glibc

/// commhost's own manager and one session in this process, with the C echo
/// plugin (Plugins/Echo/echo.c, compiled with cc) bound to `bench.echo`:
/// the path a frame takes once the transport has read it.
final class InProcessHost {
    let staging: StagingArea
    let library: PluginLibrary
    let manager: CommManager
    let session: Session
    /// Reused output buffer (takeOutput swaps into it).
    var output: [UInt8] = []

    /// With `worker` (a `commhost` executable), the plugin is served by a
    /// `commhost worker` child process, as a target with `"isolation": "process"`.
    init(pluginPath: String, worker: String? = nil, limits: ManifestLimits = .defaults) throws {
        staging = try StagingArea()
        library = try PluginLibrary.load(path: pluginPath, staging: staging,
                                         isolation: worker.map { WorkerLaunch(executable: $0) })
        guard let handler = library.handler(named: "echo") else {
            throw ScenarioFailure("\(pluginPath) has no handler \"echo\"")
        }
        manager = CommManager(targets: TargetTable(["bench.echo": handler]), limits: limits)
        session = manager.makeSession()
    }

    /// Feeds every line of `bytes` to the session, taking the output every
    /// `takeEvery` lines; returns (lines fed, reply bytes taken). With
    /// `awaitingReplies`, then waits until that many reply lines were taken
    /// (a worker answers pipelined comm_msgs after the session went on).
    @discardableResult
    func feed(_ bytes: [UInt8], takeEvery: Int = 1024, awaitingReplies: Int? = nil) -> (lines: Int, replyBytes: Int) {
        var lines = 0
        var replyBytes = 0
        var replyLines = 0
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            var start = 0
            // A run of `takeEvery` lines at a time, as a transport hands the
            // lines of one read to the session; the output stays pending.
            while start < raw.count {
                session.handleBatch(directLimit: 0, write: { _ in 0 }) {
                    while start < raw.count, let nl = memchr(base + start, 0x0A, raw.count - start) {
                        let stop = base.distance(to: UnsafeRawPointer(nl))
                        lines += 1
                        session.receive(UnsafeRawBufferPointer(start: base + start, count: stop - start), line: lines)
                        start = stop + 1
                        if lines % takeEvery == 0 { break }
                    }
                    if memchr(base + start, 0x0A, raw.count - start) == nil { start = raw.count }
                }
                _ = session.takeOutput(into: &output, wait: false)
                replyBytes += output.count
                if awaitingReplies != nil { replyLines += countLines(output) }
            }
        }
        if let awaitingReplies {
            while replyLines < awaitingReplies, session.takeOutput(into: &output, wait: true) {
                replyBytes += output.count
                replyLines += countLines(output)
            }
        }
        return (lines, replyBytes)
    }

    /// Ends the session and retires the plugin.
    func close() {
        manager.shutdown()
        library.retire()
        staging.removeAll()
    }
}

/// Counts newlines in `bytes`.
func countLines(_ bytes: [UInt8]) -> Int {
    bytes.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { return 0 }
        var count = 0
        var start = 0
        while start < raw.count, let nl = memchr(base + start, 0x0A, raw.count - start) {
            count += 1
            start = base.distance(to: UnsafeRawPointer(nl)) + 1
        }
        return count
    }
}
