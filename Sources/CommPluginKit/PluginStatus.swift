import CommPluginAPI

/// A status code of the plugin ABI: `ok`, or one of the negative `COMMHOST_E*`
/// values of `comm_plugin.h`. Unknown codes (from a newer host) are kept as
/// they are.
public struct PluginStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The `commhost_status` integer.
    public let rawValue: Int32

    /// Wraps a `commhost_status` integer.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// `COMMHOST_OK`: success.
    public static let ok = PluginStatus(rawValue: COMMHOST_OK)
    /// `COMMHOST_EFAIL`: unspecified failure; the error text says what happened.
    public static let failed = PluginStatus(rawValue: COMMHOST_EFAIL)
    /// `COMMHOST_EINVAL`: an argument was NULL, out of range or otherwise unusable.
    public static let invalidArgument = PluginStatus(rawValue: COMMHOST_EINVAL)
    /// `COMMHOST_EJSON`: JSON given to the host is not a valid JSON object.
    public static let invalidJSON = PluginStatus(rawValue: COMMHOST_EJSON)
    /// `COMMHOST_ECLOSED`: the comm is closed, or its session has ended (or is ending).
    public static let closed = PluginStatus(rawValue: COMMHOST_ECLOSED)
    /// `COMMHOST_ENOMEM`: out of memory.
    public static let outOfMemory = PluginStatus(rawValue: COMMHOST_ENOMEM)
    /// `COMMHOST_EUNSUPPORTED`: the request is not supported.
    public static let unsupported = PluginStatus(rawValue: COMMHOST_EUNSUPPORTED)
    /// `COMMHOST_ELIMIT`: a host limit (message size, comms per session) would be exceeded.
    public static let limitExceeded = PluginStatus(rawValue: COMMHOST_ELIMIT)
    /// `COMMHOST_EEXISTS`: a comm with this id is already open in the session.
    public static let alreadyExists = PluginStatus(rawValue: COMMHOST_EEXISTS)
    /// `COMMHOST_ESTATE`: saved state given to restore is not in a format this
    /// version reads; the host closes that comm and the reload goes on.
    public static let unreadableState = PluginStatus(rawValue: COMMHOST_ESTATE)
    /// `COMMHOST_EAGAIN`: backpressure. The session's outbound queue is above
    /// its high-water mark and nothing was sent or opened; send again after
    /// ``CommLibrary/sessionWritable(_:)`` runs for the session.
    public static let backpressure = PluginStatus(rawValue: COMMHOST_EAGAIN)
    /// `COMMHOST_EHANDLE`: the host does not know the handle (a comm, session
    /// or timer the plugin no longer holds).
    public static let invalidHandle = PluginStatus(rawValue: COMMHOST_EHANDLE)
    /// `COMMHOST_ECANCELED`: a timer was cancelled.
    public static let canceled = PluginStatus(rawValue: COMMHOST_ECANCELED)

    /// The C constant's name and the number, e.g. `COMMHOST_ECLOSED (-4)`.
    public var description: String {
        let name: String
        switch self {
        case .ok: name = "COMMHOST_OK"
        case .failed: name = "COMMHOST_EFAIL"
        case .invalidArgument: name = "COMMHOST_EINVAL"
        case .invalidJSON: name = "COMMHOST_EJSON"
        case .closed: name = "COMMHOST_ECLOSED"
        case .outOfMemory: name = "COMMHOST_ENOMEM"
        case .unsupported: name = "COMMHOST_EUNSUPPORTED"
        case .limitExceeded: name = "COMMHOST_ELIMIT"
        case .alreadyExists: name = "COMMHOST_EEXISTS"
        case .unreadableState: name = "COMMHOST_ESTATE"
        case .backpressure: name = "COMMHOST_EAGAIN"
        case .invalidHandle: name = "COMMHOST_EHANDLE"
        case .canceled: name = "COMMHOST_ECANCELED"
        default: name = "unknown status"
        }
        return "\(name) (\(rawValue))"
    }
}
