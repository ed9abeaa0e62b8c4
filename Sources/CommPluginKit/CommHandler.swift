/// The logic of one kind of comm: a new instance for each comm the client
/// opens on a target bound to ``handlerName``, or that the plugin opens with
/// ``Session/open(_:target:id:_:)``.
///
/// The host calls an instance from one thread at a time and never
/// re-entrantly, and the kit runs its tasks and timers (``Comm/post(_:)``,
/// ``Comm/startTimer(after:every:_:)``) on that same serialized context, so
/// an instance needs no locks of its own. Whatever an initializer or
/// ``receive(_:)`` throws becomes the callback's status and error text (see
/// ``PluginError``); nothing thrown reaches the host as a Swift error.
///
/// ```swift
/// final class Greeter: CommHandler {
///     static let handlerName = "greeter"
///     let comm: Comm
///     init(comm: Comm, open message: CommMessage) throws { self.comm = comm }
///     func receive(_ message: CommMessage) throws {
///         try comm.send(json: ["greeting": "hello"])
///     }
/// }
/// ```
///
/// Handler types are `SendableMetatype`: the kit creates instances on
/// whatever thread the host calls open from, so a conformance may not be
/// isolated to an actor.
public protocol CommHandler: AnyObject, SendableMetatype {
    /// The handler's name in the library, which the manifest binds targets
    /// to. Unique within the library.
    static var handlerName: String { get }

    /// Makes the instance for a new comm. For a comm the client opened,
    /// `message` is its comm_open's data, metadata and buffers, and throwing
    /// refuses the comm: the host closes it toward the client, and no other
    /// method runs for it. For a comm the plugin opened with
    /// ``Session/open(_:target:id:_:)``, `message` is what that comm_open
    /// sent, and throwing closes the comm again (``Session/open(_:target:id:_:)``
    /// rethrows).
    init(comm: Comm, open message: CommMessage) throws

    /// Handles a comm_msg from the client. A thrown error is logged by the
    /// host with its text and reported to the client; the comm stays open.
    /// Default: ignores the message.
    func receive(_ message: CommMessage) throws

    /// The comm has closed, for `cause` (or was handed off to a newer
    /// version: ``CloseCause/handedOff``); runs exactly once per opened
    /// instance, after the comm's tasks and timers have ended, and then the
    /// kit drops the instance. `message` is the client's comm_close
    /// (``CloseCause/client``) or the one the plugin sent
    /// (``CloseCause/plugin``), else empty. Stop any thread that uses the comm
    /// here. Default: does nothing.
    func close(cause: CloseCause, message: CommMessage)
}

extension CommHandler {
    /// Ignores the message.
    public func receive(_ message: CommMessage) throws {}

    /// Does nothing.
    public func close(cause: CloseCause, message: CommMessage) {}
}
