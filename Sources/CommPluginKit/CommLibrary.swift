/// What one loaded library shares across its comms and sessions: its
/// configuration, per-session state, the start and end of each session, and
/// its teardown. Give the type to ``PluginExport`` (`library:`); the kit makes
/// one instance per library `init` and drops it at the library's `deinit`,
/// right after ``shutdown()``.
///
/// ```swift
/// final class Dashboard: CommLibrary {
///     let title: String
///     init(host: PluginHost) throws {
///         struct Config: Decodable { var title: String }
///         title = try host.decodeConfiguration(Config.self).title
///     }
///     /// Speaks first: every new session gets a clock widget.
///     func sessionStarted(_ session: Session, cause: SessionCause) throws -> Visits {
///         if cause == .started {
///             try session.open(Clock.self, target: "jupyter.widget", CommMessage(json: ["title": title]))
///         }
///         return Visits()
///     }
/// }
/// ```
///
/// Handlers reach the library with ``Comm/library(as:)`` and the session's
/// state with ``Session/state(as:)``.
///
/// The library object is shared by every session, and a ``Comm`` or
/// ``Session`` may be used from any thread, so the type is `Sendable`: keep
/// mutable shared state behind a `Mutex`. The session callbacks of one
/// session never overlap; those of different sessions overlap only when the
/// library was exported with `concurrent: true`.
public protocol CommLibrary: AnyObject, Sendable {
    /// What ``sessionStarted(_:cause:)`` keeps for each session, read back
    /// with ``Session/state(as:)``. `Void` when the library keeps nothing.
    associatedtype SessionState = Void

    /// Sets the library up when the host loads it (`init` in the ABI), before
    /// any other callback. Throwing refuses the library with the error's text.
    init(host: PluginHost) throws

    /// The library begins serving `session`: a new client session
    /// (``SessionCause/started``; open its first comms here with
    /// ``Session/open(_:target:id:_:)``), or one handed over from the previous
    /// version of this library by a reload (``SessionCause/resumed``; its
    /// comms are already restored). Runs before any comm of the session
    /// reaches the library. The result is the session's state. A thrown error
    /// is logged by the host; ``sessionEnded(_:cause:)`` still runs.
    /// Default (when `SessionState` is `Void`): does nothing.
    func sessionStarted(_ session: Session, cause: SessionCause) throws -> SessionState

    /// The library stops serving `session`, once per ``sessionStarted(_:cause:)``,
    /// after every comm of the session has closed (or was handed off) and its
    /// tasks and timers have ended. The session's state is still readable
    /// here and is dropped after. Default: does nothing.
    func sessionEnded(_ session: Session, cause: SessionCause)

    /// Backpressure in `session` is over: a send or open of this library
    /// there threw ``PluginStatus/backpressure``, and the client has since
    /// taken the outbound queue down; send again now. Runs once per such
    /// episode. Default: does nothing.
    func sessionWritable(_ session: Session)

    /// The host is retiring the library (`deinit` in the ABI), after every
    /// comm has closed or been handed off and every session has ended. Stop
    /// and join every thread the library started, and drop the comms and
    /// sessions it holds; the host functions stop working when this returns.
    /// Default: does nothing.
    func shutdown()
}

extension CommLibrary where SessionState == Void {
    /// Does nothing.
    public func sessionStarted(_ session: Session, cause: SessionCause) throws {}
}

extension CommLibrary {
    /// Does nothing.
    public func sessionEnded(_ session: Session, cause: SessionCause) {}

    /// Does nothing.
    public func sessionWritable(_ session: Session) {}

    /// Does nothing.
    public func shutdown() {}
}

/// The library of a plugin that exports no ``CommLibrary`` type: keeps nothing.
final class DefaultLibrary: CommLibrary {
    init(host: PluginHost) {}
}
