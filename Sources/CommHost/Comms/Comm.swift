import CommPluginAPI
import Synchronization

/// One open comm: its id and target, the handler and instance that serve it,
/// and the session it belongs to. The plugin's `commhost_comm *` is a token
/// for this object; the host functions it receives land here and go to the
/// session.
final class Comm: CommHandle, Identifiable, @unchecked Sendable {
    // @unchecked: `handler`, `instance` and `needsCloseCallback` are touched only
    // inside the session's serialized context; `closed` only under the
    // session's output lock.

    /// The session that owns the comm.
    let session: Session
    /// The handler serving the comm (replaced on reload).
    var handler: Handler
    /// The plugin's instance pointer for this comm.
    var instance: UnsafeMutableRawPointer?
    /// True from a successful open until the close callback has run.
    var needsCloseCallback = false
    /// True once the comm is closed: sends are refused from then on.
    var closed = false
    /// The stats counters of the comm's target.
    let stats: StatsTarget

    /// The comm's target name (its counters' name: one string per target,
    /// not one per comm).
    var targetName: String { stats.name }

    /// Comms alive in the process (for tests that check ended ones are freed).
    static let live = Atomic<Int>(0)

    init(id: String, targetName: String, session: Session, handler: Handler) {
        self.session = session
        self.handler = handler
        stats = session.statsTarget(for: targetName)
        super.init(id: id, targetName: targetName)
        Self.live.add(1, ordering: .relaxed)
    }

    deinit {
        Self.live.subtract(1, ordering: .relaxed)
    }

    override func hostSend(from library: PluginLibrary, _ message: UnsafePointer<commhost_message>?) -> commhost_status {
        session.pluginSend(on: self, from: library, message)
    }

    override func hostClose(from library: PluginLibrary, _ message: UnsafePointer<commhost_message>?) -> commhost_status {
        session.pluginClose(self, from: library, message)
    }

    override var hostSession: SessionHandle? { session.port }
}
