import CommPluginAPI

/// The level of a line written with ``PluginHost/log(_:_:)``.
public enum LogLevel: Hashable, Sendable {
    /// `COMMHOST_LOG_DEBUG`.
    case debug
    /// `COMMHOST_LOG_INFO`.
    case info
    /// `COMMHOST_LOG_WARNING`.
    case warning
    /// `COMMHOST_LOG_ERROR`.
    case error

    /// The `commhost_log_level` value.
    var cValue: commhost_log_level {
        switch self {
        case .debug: COMMHOST_LOG_DEBUG
        case .info: COMMHOST_LOG_INFO
        case .warning: COMMHOST_LOG_WARNING
        case .error: COMMHOST_LOG_ERROR
        }
    }
}
