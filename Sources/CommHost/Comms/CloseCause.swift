import CommPluginAPI

/// Why a comm closed; each opened instance's close callback gets exactly one.
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

    /// The ABI's value.
    var cValue: commhost_close_cause { commhost_close_cause(rawValue: UInt32(rawValue)) }

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
}
