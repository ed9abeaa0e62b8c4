import CommPluginAPI

/// Why a handler's ``CommHandler/close(cause:message:)`` runs. Each instance
/// sees exactly one.
public enum CloseCause: Hashable, Sendable {
    /// The client sent comm_close (`COMMHOST_CLOSE_CLIENT`).
    case client
    /// The plugin closed the comm itself with ``Comm/close(_:)`` (`COMMHOST_CLOSE_PLUGIN`).
    case plugin
    /// The client's session ended (`COMMHOST_CLOSE_SESSION_ENDED`).
    case sessionEnded
    /// The host is shutting down (`COMMHOST_CLOSE_SHUTDOWN`).
    case shutdown
    /// The target was removed or disabled in the manifest (`COMMHOST_CLOSE_REMOVED`).
    case removed
    /// The library was reloaded and the comm could not be handed off, or the
    /// hand-off was abandoned (`COMMHOST_CLOSE_RELOAD`).
    case reload
    /// The comm was handed off to a newer version of the library: its state
    /// lives on there, and this old instance is being dropped as its library
    /// is retired. The comm is not closed; do not send on it. (The kit's
    /// own cause: the host does not close a handed-off comm.)
    case handedOff
    /// A cause this version of the kit does not know (from a newer host).
    case other(Int32)

    /// The cause for a `commhost_close_cause` value.
    init(_ cause: commhost_close_cause) {
        switch cause {
        case COMMHOST_CLOSE_CLIENT: self = .client
        case COMMHOST_CLOSE_PLUGIN: self = .plugin
        case COMMHOST_CLOSE_SESSION_ENDED: self = .sessionEnded
        case COMMHOST_CLOSE_SHUTDOWN: self = .shutdown
        case COMMHOST_CLOSE_REMOVED: self = .removed
        case COMMHOST_CLOSE_RELOAD: self = .reload
        default: self = .other(cause)
        }
    }
}
