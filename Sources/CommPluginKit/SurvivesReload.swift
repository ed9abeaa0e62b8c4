/// A ``CommHandler`` whose comms survive a reload of the library: the old
/// version's instance gives its ``state``, the new version's
/// ``init(comm:restoring:)`` takes it up, and the client sees nothing.
///
/// The state crosses as JSON (sorted keys, so the same state gives the same
/// bytes), possibly written by an older version of the library. When the
/// versions are equal the host checks that the restored instance's state
/// gives back the same bytes. To read an older format, give new fields of
/// `State` defaults, or implement ``decodeState(_:fromVersion:)`` to migrate:
///
/// ```swift
/// static func decodeState(_ saved: [UInt8], fromVersion version: String) throws -> State {
///     if version.hasPrefix("1.") {                       // 1.x saved {"count": N}
///         return State(value: try decodeSaved(OldState.self, from: saved).count)
///     }
///     return try decodeSaved(State.self, from: saved)
/// }
/// ```
///
/// State that does not decode fails with ``PluginStatus/unreadableState``:
/// the host then closes that comm (``CloseCause/reload``) and the reload goes
/// on. Any other error thrown while restoring abandons the whole reload (the
/// old version keeps serving).
///
/// Handlers that do not adopt this protocol have their comms closed on
/// reload (``CloseCause/reload``).
public protocol SurvivesReload: CommHandler {
    /// Everything the instance needs to carry on after a reload.
    associatedtype State: Codable

    /// The instance's state now. Read on the old version at hand-off.
    var state: State { get }

    /// Takes over an already open `comm` with `state`, decoded by
    /// ``decodeState(_:fromVersion:)`` from what the old version's ``state``
    /// wrote. Runs before the session's ``CommLibrary/sessionStarted(_:cause:)``
    /// (``SessionCause/resumed``), so the session has no state yet.
    init(comm: Comm, restoring state: State) throws

    /// Reads the saved state bytes written by library version `version` (the
    /// previous descriptor's version text). Default: decodes `State` from the
    /// JSON, whatever the version.
    static func decodeState(_ saved: [UInt8], fromVersion version: String) throws -> State
}

extension SurvivesReload {
    /// Decodes `State` from the JSON, whatever the version.
    public static func decodeState(_ saved: [UInt8], fromVersion version: String) throws -> State {
        try decodeSaved(State.self, from: saved)
    }

    /// Decodes saved JSON state bytes as `T` (the current or an older state
    /// type). Throws ``PluginError`` with ``PluginStatus/unreadableState``,
    /// saying where and why, when they do not decode.
    public static func decodeSaved<T: Decodable>(_ type: T.Type, from saved: [UInt8]) throws -> T {
        try JSONCoding.decode(T.self, from: saved, what: "the saved state of handler \"\(handlerName)\"",
                              status: .unreadableState, emptyIsObject: false)
    }
}
