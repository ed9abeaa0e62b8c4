import CommPluginAPI

/// Why ``CommLibrary/sessionStarted(_:cause:)`` or
/// ``CommLibrary/sessionEnded(_:cause:)`` runs.
public enum SessionCause: Hashable, Sendable {
    /// Start: a client session began, or the library was added to a running
    /// host (`COMMHOST_SESSION_STARTED`). Open the session's first comms now.
    case started
    /// Start: the session was served by the previous version of this library,
    /// which was just reloaded; the comms it handed off are already restored
    /// here. Do not open the session's first comms again
    /// (`COMMHOST_SESSION_RESUMED`).
    case resumed
    /// End: the client went away (`COMMHOST_SESSION_ENDED`).
    case ended
    /// End: the host is shutting down (`COMMHOST_SESSION_SHUTDOWN`).
    case shutdown
    /// End: this version was replaced by a reload; the session goes on under
    /// the new one (`COMMHOST_SESSION_HANDED_OFF`).
    case handedOff
    /// End: the library's last target was removed from the manifest
    /// (`COMMHOST_SESSION_REMOVED`).
    case removed
    /// A cause this version of the kit does not know (from a newer host).
    case other(Int32)

    /// The cause for a `commhost_session_cause` value.
    init(_ cause: commhost_session_cause) {
        switch cause {
        case COMMHOST_SESSION_STARTED: self = .started
        case COMMHOST_SESSION_RESUMED: self = .resumed
        case COMMHOST_SESSION_ENDED: self = .ended
        case COMMHOST_SESSION_SHUTDOWN: self = .shutdown
        case COMMHOST_SESSION_HANDED_OFF: self = .handedOff
        case COMMHOST_SESSION_REMOVED: self = .removed
        default: self = .other(cause)
        }
    }
}
