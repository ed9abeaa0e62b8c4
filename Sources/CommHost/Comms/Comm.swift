import CommPluginAPI

/// One open comm: its id and target, the handler and instance that serve it,
/// and the session it belongs to. The plugin's `commhost_comm *` is this
/// object; the host functions it receives land here and go to the session.
final class Comm: CommHandle, @unchecked Sendable {
    // @unchecked: `handler`, `instance` and `owesClose` are touched only
    // inside the session's serialized context; `closed` only under the
    // session's output lock.

    /// The session that owns the comm.
    let session: Session
    /// The handler serving the comm (replaced on reload).
    var handler: Handler
    /// The plugin's instance pointer for this comm.
    var instance: UnsafeMutableRawPointer?
    /// True from a successful open until the close callback has run.
    var owesClose = false
    /// True once the comm is closed: sends are refused from then on.
    var closed = false
    /// The stats counters of the comm's target.
    let stats: StatsTarget

    init(id: String, targetName: String, session: Session, handler: Handler) {
        self.session = session
        self.handler = handler
        stats = session.statsTarget(for: targetName)
        super.init(id: id, targetName: targetName)
    }

    override func hostSend(_ message: UnsafePointer<commhost_message>?) -> commhost_status {
        session.pluginSend(on: self, message)
    }

    override func hostClose(_ message: UnsafePointer<commhost_message>?) -> commhost_status {
        session.pluginClose(self, message)
    }

    override func hostOpen(targetName: String, commID: String, message: UnsafePointer<commhost_message>?,
                           instance: UnsafeMutableRawPointer?) -> (commhost_status, CommHandle?) {
        session.pluginOpen(from: self, targetName: targetName, commID: commID, message: message, instance: instance)
    }
}
