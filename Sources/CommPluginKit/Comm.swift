import CommPluginAPI

/// One comm, as a handler sees it: send messages on it, close it, read its
/// id and target name, and schedule work for its instance.
///
/// A `Comm` holds its own reference to the host's comm handle
/// (`retain_comm` when the kit makes it for a comm the client opened, the
/// reference `open` hands back for one the plugin opened; `release_comm`
/// when the last reference to the object goes), so it stays safe to use from
/// any thread and for as long as you keep it: once the comm has closed,
/// ``send(_:)`` and ``close(_:)`` throw ``PluginError`` with
/// ``PluginStatus/closed`` instead of failing worse. Sends leave in the order
/// they were issued.
public final class Comm: @unchecked Sendable {
    // @unchecked: `handle`, `session`, `id` and `targetName` are immutable;
    // the handle is kept valid by the reference this object holds and the
    // host functions called with it are [any-thread]. `box` is written once
    // in the open or restore callback (or Session.open) and read by this
    // comm's tasks, all on the session's serialized context, which the host
    // never runs on two threads at once.

    /// The session the comm belongs to.
    public let session: Session
    /// The comm's id (`comm_id`).
    public let id: String
    /// The comm's `target_name`.
    public let targetName: String
    /// The host this comm's library was loaded by.
    public var host: PluginHost { session.host }

    let handle: OpaquePointer
    /// The instance serving the comm (the host holds the box until close).
    private(set) weak var box: InstanceBox?

    /// Wraps `handle`, whose reference the caller hands over (from host open).
    init(adopting handle: OpaquePointer, session: Session) {
        self.handle = handle
        self.session = session
        let table = session.host.live
        self.id = table?.commID(handle) ?? ""
        self.targetName = table?.targetName(handle) ?? ""
    }

    /// Wraps `handle` and takes a reference on it.
    convenience init(retaining handle: OpaquePointer, session: Session) throws {
        let status = try session.host.liveTable(for: "a comm").retain(comm: handle)
        guard status == .ok else {
            throw PluginError(status, "the host refused a reference on a comm handle (\(status))")
        }
        self.init(adopting: handle, session: session)
    }

    deinit {
        _ = session.host.live?.release(comm: handle)
    }

    /// Records the instance that serves this comm.
    func serve(from box: InstanceBox) {
        self.box = box
    }

    /// The library's ``CommLibrary`` as `Library`. Throws ``PluginError``
    /// when the library exported another type.
    public func library<Library: CommLibrary>(as type: Library.Type = Library.self) throws -> Library {
        try session.library(as: type)
    }

    /// Sends a comm_msg with `message` to the client. Throws ``PluginError``
    /// with the host's status: ``PluginStatus/closed`` once the comm has
    /// closed, ``PluginStatus/backpressure`` when the session's outbound
    /// queue is full (nothing was sent; send again after
    /// ``CommLibrary/sessionWritable(_:)``), ``PluginStatus/invalidJSON`` when
    /// data or metadata is not a JSON object, ``PluginStatus/limitExceeded``
    /// when it is too large.
    public func send(_ message: CommMessage) throws {
        let status = try host.liveTable(for: "send on comm \"\(id)\"").send(handle, message)
        try check(status, "send")
    }

    /// Sends a comm_msg whose data is `value` encoded as JSON (sorted keys;
    /// it must encode as an object), with `buffers`. Throws as ``send(_:)``.
    public func send(json value: some Encodable, buffers: [[UInt8]] = []) throws {
        try send(CommMessage(json: value, buffers: buffers))
    }

    /// Closes the comm: sends comm_close with `message` (empty data means
    /// `{}`); the handler's ``CommHandler/close(cause:message:)`` then runs
    /// with ``CloseCause/plugin`` (after the current callback, when called
    /// from one). Never refused for backpressure. Throws ``PluginError`` with
    /// ``PluginStatus/closed`` when the comm was already closed.
    public func close(_ message: CommMessage = CommMessage()) throws {
        let status = try host.liveTable(for: "close of comm \"\(id)\"").close(handle, message)
        try check(status, "close")
    }

    /// Closes the comm with data `value` encoded as JSON. Throws as ``close(_:)``.
    public func close(json value: some Encodable) throws {
        try close(CommMessage(json: value))
    }

    /// Runs `task` with the comm's instance on the comm's serialized context,
    /// after the callback running there now, never alongside another call of
    /// the session, so the instance needs no lock. From any thread. The task
    /// does not run if the comm closes first. What it throws is logged.
    /// `Handler` is the comm's handler type: `comm.post { (me: Clock) in try me.tick() }`.
    /// Throws ``PluginError`` (``PluginStatus/closed`` once the comm has closed).
    public func post<Handler: CommHandler>(_ task: @escaping @Sendable (Handler) throws -> Void) throws {
        try scheduled(task, repeats: false, what: "a task of comm \"\(id)\"").post(comm: handle)
    }

    /// Runs `task` with the comm's instance on the comm's serialized context
    /// `delay` from now and then, when `period` is given, every `period` (a
    /// period is skipped while the previous run has not finished), until
    /// cancelled or the comm closes (its timers end before its close
    /// callback). From any thread. Throws as ``post(_:)``.
    @discardableResult
    public func startTimer<Handler: CommHandler>(after delay: Duration, every period: Duration? = nil,
                                                 _ task: @escaping @Sendable (Handler) throws -> Void) throws
        -> HostTimer {
        try scheduled(task, repeats: period != nil, what: "a timer of comm \"\(id)\"")
            .startTimer(comm: handle, delay: delay, period: period)
    }

    private func scheduled<Handler: CommHandler>(_ task: @escaping @Sendable (Handler) throws -> Void, repeats: Bool,
                                                 what: String) -> ScheduledTask {
        ScheduledTask(session: session, repeats: repeats, what: what) { [self] in
            guard let handler = box?.handler as? Handler else {
                let actual = box?.handler.map { "\(type(of: $0))" } ?? "no instance"
                throw PluginError(.failed, "\(what) takes a \(Handler.self), but the comm is served by \(actual)")
            }
            try task(handler)
        }
    }

    private func check(_ status: PluginStatus, _ what: String) throws {
        guard status == .ok else {
            throw PluginError(status, "\(what) on comm \"\(id)\" (target \"\(targetName)\") failed: \(Self.explain(status))")
        }
    }

    /// What a refusal by the host means, for an error message.
    static func explain(_ status: PluginStatus) -> String {
        switch status {
        case .closed: "the comm is closed or its session has ended (\(status))"
        case .backpressure: "the session's outbound queue is full and nothing was sent; "
            + "send again after the library's sessionWritable (\(status))"
        case .invalidJSON: "data and metadata must each be a JSON object or empty (\(status))"
        case .limitExceeded: "the message exceeds a host limit (\(status))"
        case .invalidArgument: "the host refused the arguments (\(status))"
        case .alreadyExists: "a comm with this id is already open in the session (\(status))"
        case .invalidHandle: "the host does not know the handle (\(status))"
        default: "\(status)"
        }
    }
}
