import CommPluginAPI

/// The handle plugins hold for a session. It lets go of its session when the
/// session ends, so a plugin reference on an ended session keeps nothing of
/// it alive. (A strong reference behind a lock rather than a weak one: a weak
/// reference's side table is only reachable through a tagged pointer, which
/// LeakSanitizer reports as a leak for every session still live at exit.)
final class SessionPort: SessionHandle, @unchecked Sendable {
    // @unchecked: `current` is guarded by its lock.
    private let current = Locked<Session?>(nil)

    /// The session, until it has ended.
    var session: Session? {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }

    override func hostOpen(from library: PluginLibrary, handlerName: String, targetName: String, commID: String,
                           message: UnsafePointer<commhost_message>?, instance: UnsafeMutableRawPointer?,
                           retain: Bool) -> (commhost_status, CommHandle?) {
        guard let session else { return (COMMHOST_ECLOSED, nil) }
        return session.pluginOpen(from: library, handlerName: handlerName, targetName: targetName, commID: commID,
                                  message: message, instance: instance, retain: retain)
    }

    override func hostSessionData(for library: PluginLibrary) -> UnsafeMutableRawPointer? {
        session?.sessionData(for: library)
    }

    override func hostSchedule(from library: PluginLibrary, comm: CommHandle?, delayMilliseconds: UInt64, periodMilliseconds: UInt64?,
                               task: PluginTaskFunction) -> (commhost_status, UInt64) {
        guard let session else { return (COMMHOST_ECLOSED, 0) }
        let owned = comm as? Comm
        if comm != nil && owned?.session !== session { return (COMMHOST_EINVAL, 0) }
        return session.pluginSchedule(from: library, comm: owned, delayMilliseconds: delayMilliseconds,
                                      periodMilliseconds: periodMilliseconds, task: task)
    }
}
