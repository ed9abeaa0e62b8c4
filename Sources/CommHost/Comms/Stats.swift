import Synchronization

/// The host's own counters behind `commhost_stats_reply`: per-target
/// counters (``StatsTarget``), error frames per kind, reloads and uptime.
/// What is live (sessions, open comms) is not counted here but read from the
/// sessions when a snapshot is taken.
final class Stats: Sendable {
    private let startedNanoseconds = MonotonicClock.nanoseconds()
    /// Guard the counters per target, per error name and per worker: sessions,
    /// the reloader and stats requests contend for them.
    private let targets = Locked<[String: StatsTarget]>([:])
    private let errors = Locked<[String: Int]>([:])
    private let reloads = Atomic<Int>(0)
    private let workers = Locked<[String: StatsWorker]>([:])

    /// The counters of the worker-served library at `path`, created on first use.
    func worker(_ path: String) -> StatsWorker {
        workers.withLock { table in
            if let existing = table[path] { return existing }
            let created = StatsWorker()
            table[path] = created
            return created
        }
    }

    /// The counters of `targetName`, created on first use. Look this up once
    /// per comm, not per message.
    func target(_ targetName: String) -> StatsTarget {
        targets.withLock { table in
            if let existing = table[targetName] { return existing }
            let created = StatsTarget(name: targetName)
            table[targetName] = created
            return created
        }
    }

    /// Counts one error frame of kind `ename`.
    func countError(_ ename: String) {
        errors.withLock { $0[ename, default: 0] += 1 }
    }

    /// Counts one reload that switched code.
    func countReload() {
        reloads.add(1, ordering: .relaxed)
    }

    /// The counters now, with the live figures the caller read: `sessions`
    /// and `openComms` per target. Every target in `known` (the bound ones)
    /// is listed even when nothing has happened to it yet.
    func snapshot(sessions: Int, openComms: [String: Int], known: some Sequence<String>) -> StatsSnapshot {
        let counted = targets.withLock { $0 }
        var names = Set(known)
        names.formUnion(counted.keys)
        names.formUnion(openComms.keys)
        var perTarget: [String: StatsSnapshot.Target] = [:]
        for name in names {
            var target = StatsSnapshot.Target(open: openComms[name] ?? 0)
            if let counters = counted[name] {
                target.opened = counters.opened.load(ordering: .relaxed)
                target.messagesIn = counters.messagesIn.load(ordering: .relaxed)
                target.messagesOut = counters.messagesOut.load(ordering: .relaxed)
                target.handlerTime = counters.handlerTime.summary()
            }
            perTarget[name] = target
        }
        return StatsSnapshot(uptimeSeconds: Double(MonotonicClock.nanoseconds() &- startedNanoseconds) / 1e9, sessions: sessions,
                             reloads: reloads.load(ordering: .relaxed), errors: errors.withLock { $0 }, targets: perTarget,
                             workers: workers.withLock { $0 }.mapValues(\.snapshot))
    }
}
