/// The counters of one worker-served library (`"isolation": "process"`),
/// by library path: its current worker's pid, restarts, crashes and the
/// last crash's reason.
final class StatsWorker: Sendable {
    private struct Figures {
        var pid = 0
        var restarts = 0
        var crashes = 0
        var lastCrash: String?
        var disabled = false
    }
    /// `Locked`: the reloader writes, stats requests from any session read.
    private let figures = Locked(Figures())

    /// A worker started (at load, reload or restart) with `pid`.
    func started(pid: Int32) {
        figures.withLock {
            $0.pid = Int(pid)
            $0.disabled = false
        }
    }

    /// The worker died for `reason`.
    func crashed(reason: String) {
        figures.withLock {
            $0.crashes += 1
            $0.lastCrash = reason
            $0.pid = 0
        }
    }

    /// A new worker replaced one that crashed.
    func restarted() {
        figures.withLock { $0.restarts += 1 }
    }

    /// The library's targets were disabled after too many crashes.
    func disabled() {
        figures.withLock { $0.disabled = true }
    }

    /// The figures now.
    var snapshot: StatsSnapshot.Worker {
        figures.withLock { StatsSnapshot.Worker(pid: $0.pid, restarts: $0.restarts, crashes: $0.crashes, lastCrash: $0.lastCrash, disabled: $0.disabled) }
    }
}
