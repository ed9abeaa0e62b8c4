import Glibc
import Synchronization

/// The process-wide comm manager: the target table every session looks up,
/// the limits and dialect they share, the live sessions, and the counters
/// behind `commhost_stats_request`.
public final class CommManager: Sendable {
    /// target_name -> handler, replaced on manifest reload.
    public let targets: TargetTable
    /// Limits every session gets.
    public let limits: ManifestLimits
    /// The wire dialect every session speaks.
    public let dialect: Dialect
    /// Where the host logs.
    public let logger: Logger
    /// Where every session records the frames it reads and issues (`serve --trace`), if anywhere.
    public let trace: FrameTrace?
    /// Ids that repeat from run to run (`commhost try`): each session's
    /// message ids are `host-1`, `host-2`, … and the comm ids it generates
    /// `comm-1`, `comm-2`, …; otherwise random as the comm package's.
    public let repeatableIDs: Bool

    /// Guards the live sessions by id: connection threads add and remove theirs, stats and reloads list them.
    private let sessions = Locked<[Int: Session]>([:])
    /// Held to create a session, and by `holdAll` until `releaseAll`, so no session appears mid-swap.
    private let admission = ConditionLock()
    private let nextSessionID = Atomic<Int>(1)
    /// The counters behind `commhost_stats_reply`.
    let stats = Stats()

    /// A manager over `targets`.
    public init(targets: TargetTable, limits: ManifestLimits = .defaults, dialect: Dialect = .jupyter, logger: Logger = .discard,
                trace: FrameTrace? = nil, repeatableIDs: Bool = false) {
        self.targets = targets
        self.limits = limits
        self.dialect = dialect
        self.logger = logger
        self.trace = trace
        self.repeatableIDs = repeatableIDs
    }

    /// A new session with an empty comm table, started for every library
    /// the targets use (their session_start runs, and may open comms,
    /// before this returns; no reload switches code meanwhile).
    public func makeSession() -> Session {
        admission.withLock {
            let id = nextSessionID.add(1, ordering: .relaxed).oldValue
            let session = Session(id: id, manager: self)
            sessions.withLock { $0[id] = session }
            session.start(libraries: targets.libraries)
            return session
        }
    }

    /// Ends `session` with `cause` (every comm's close callback runs) and forgets it.
    public func end(_ session: Session, cause: CloseCause) {
        session.end(cause: cause)
        sessions.withLock { _ = $0.removeValue(forKey: session.id) }
    }

    /// The live sessions.
    public var liveSessions: [Session] { sessions.withLock { Array($0.values) } }

    /// Enters every live session's serialized context (in ascending id
    /// order) and keeps new sessions from being created, so a reload can
    /// switch handlers for all of them at once; inbound frames wait, in
    /// order, until `releaseAll`.
    func holdAll() -> [Session] {
        admission.lock()
        let held = liveSessions.sorted { $0.id < $1.id }
        for session in held { session.enterSerialContext() }
        return held
    }

    /// Undoes `holdAll`: leaves each session's context (running the jobs queued meanwhile).
    func releaseAll(_ held: [Session]) {
        for session in held.reversed() { session.leaveSerialContext() }
        admission.unlock()
    }

    /// Ends every session with cause `shutdown`.
    public func shutdown() {
        for session in liveSessions { end(session, cause: .shutdown) }
    }

    /// Counts one error frame of kind `ename`.
    func countError(_ ename: String) {
        stats.countError(ename)
    }

    /// Counts one reload that switched code (reported as `reloads` in stats).
    public func countReload() {
        stats.countReload()
    }

    /// The figures a `commhost_stats_request` is answered with: uptime,
    /// sessions, open comms, messages and handler time per target, errors
    /// per kind and reloads (docs/STATS.md).
    public func statsSnapshot() -> StatsSnapshot {
        let live = liveSessions
        var open: [String: Int] = [:]
        for session in live {
            for (target, count) in session.openCommsPerTarget() { open[target, default: 0] += count }
        }
        return stats.snapshot(sessions: live.count, openComms: open, known: targets.all.keys)
    }
}
