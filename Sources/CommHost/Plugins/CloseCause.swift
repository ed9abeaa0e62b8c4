import CommPluginAPI

/// Why a comm closed; each opened instance's close callback gets exactly one.
/// The raw values are the ABI's `COMMHOST_CLOSE_*`.
public enum CloseCause: Int32, Sendable, CaseIterable {
    /// The client sent comm_close.
    case client = 1
    /// The plugin closed the comm (host close()).
    case plugin = 2
    /// The client's session ended.
    case sessionEnded = 3
    /// The host is shutting down.
    case shutdown = 4
    /// The target was removed or disabled in the manifest.
    case removed = 5
    /// The library was reloaded without hand-off.
    case reload = 6

    /// The name used in logs.
    public var name: String {
        switch self {
        case .client: "client"
        case .plugin: "plugin"
        case .sessionEnded: "session_ended"
        case .shutdown: "shutdown"
        case .removed: "removed"
        case .reload: "reload"
        }
    }

    /// The session_end cause that goes with ending a session for this reason.
    var sessionCause: SessionCause {
        self == .shutdown ? .shutdown : .ended
    }
}

/// Why session_start or session_end runs; the raw values are the ABI's
/// `COMMHOST_SESSION_*`.
public enum SessionCause: Int32, Sendable {
    /// session_start: a session began, or the library joined a running host.
    case started = 1
    /// session_start: the library's previous version served the session.
    case resumed = 2
    /// session_end: the client went away.
    case ended = 3
    /// session_end: the host is shutting down.
    case shutdown = 4
    /// session_end: this version was replaced by a reload.
    case handedOff = 5
    /// session_end: the library's last target was removed from the manifest.
    case removed = 6
}
