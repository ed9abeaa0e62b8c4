import CommPluginAPI

/// One client session (a stdio run, or one socket connection) as this
/// library serves it: open comms toward the client in it, post work and
/// start timers on its serialized context, and read the state the library's
/// ``CommLibrary/sessionStarted(_:cause:)`` made for it.
///
/// The kit makes one `Session` per session and hands the same object to the
/// library's session callbacks and to every ``Comm`` of the session
/// (``Comm/session``). It holds a reference to the host's session handle
/// while it exists, so it is safe to keep and to use from any thread: once
/// the session has ended, its functions throw ``PluginStatus/closed``.
public final class Session: @unchecked Sendable {
    // @unchecked: `runtime`, `handle` and `id` are immutable; the host
    // functions called with the handle are [any-thread] and the handle is
    // kept valid by the reference this object holds. `storedState` is
    // written by start() and end(), which run on this session's serialized
    // context (session_start, session_end, or the library's deinit after
    // every session ended), and read by state(as:) only after it has checked
    // it runs on that context; the host never runs two calls of one session
    // at once.

    /// The session's id, unique in the host process.
    public let id: String
    /// The host that loaded this library.
    public var host: PluginHost { runtime.host }

    let runtime: LibraryRuntime
    let handle: OpaquePointer
    private var storedState: Any?

    /// Wraps `handle` and takes a reference on it.
    init(retaining handle: OpaquePointer, runtime: LibraryRuntime) throws {
        let table = try runtime.host.liveTable(for: "a session")
        let status = table.retain(session: handle)
        guard status == .ok else {
            throw PluginError(status, "the host refused a reference on a session handle (\(status))")
        }
        self.runtime = runtime
        self.handle = handle
        self.id = table.sessionID(handle)
    }

    deinit {
        _ = runtime.host.live?.release(session: handle)
    }

    /// The library's ``CommLibrary`` as `Library`. Throws ``PluginError``
    /// when the library exported another type.
    public func library<Library: CommLibrary>(as type: Library.Type = Library.self) throws -> Library {
        try runtime.library(as: type)
    }

    /// The state ``CommLibrary/sessionStarted(_:cause:)`` returned for this
    /// session, as `State` (make it a class to change it in place). Only on
    /// the session's serialized context: inside a callback of the session, or
    /// a task or timer of it or of one of its comms. Throws ``PluginError``
    /// when called elsewhere, when there is no state (sessionStarted has not
    /// run, threw, or the session has ended) or when it is of another type.
    public func state<State>(as type: State.Type = State.self) throws -> State {
        guard SerializedContext.isCurrent(handle) else {
            throw PluginError(.failed, "the state of session \(id) was read off its serialized context; "
                + "read it in a callback of the session, or in a task given to session.post")
        }
        guard let storedState else {
            throw PluginError(.failed, "session \(id) has no state: sessionStarted has not run for it, threw, "
                + "or the session has ended")
        }
        guard let state = storedState as? State else {
            throw PluginError(.failed, "the state of session \(id) is a \(Swift.type(of: storedState)), not a \(State.self)")
        }
        return state
    }

    /// Opens a comm toward the client in this session, served by `Handler`,
    /// and makes its instance with `Handler`'s ``CommHandler/init(comm:open:)``,
    /// which receives `message`, the data the comm_open carried. See
    /// ``open(_:target:id:_:instance:)``.
    @discardableResult
    public func open<Handler: CommHandler>(_ type: Handler.Type, target: String, id: String? = nil,
                                           _ message: CommMessage = CommMessage()) throws -> Comm {
        try open(type, target: target, id: id, message) { comm in try Handler(comm: comm, open: message) }
    }

    /// Opens a comm toward the client in this session, served by `Handler`
    /// (one of the library's exported handler types): a comm_open with
    /// `target` (the client-side target, e.g. `"jupyter.widget"`), `message`
    /// and the id `id` (nil: the host makes 32 hex digits) goes out first,
    /// then `instance` makes the comm's instance from the new ``Comm``. The
    /// kit keeps the instance as it does one the client opened: it receives
    /// the client's messages and its ``CommHandler/close(cause:message:)``
    /// runs once.
    ///
    /// Call it on the session's serialized context: from
    /// ``CommLibrary/sessionStarted(_:cause:)``, any callback of the
    /// session's comms, or a task (``post(_:)``); from another thread, post a
    /// task that opens. Throws ``PluginError``: ``PluginStatus/backpressure``
    /// (nothing went out; retry after ``CommLibrary/sessionWritable(_:)``),
    /// ``PluginStatus/closed`` (the session is ending),
    /// ``PluginStatus/alreadyExists``, ``PluginStatus/invalidArgument`` (the
    /// handler is not exported, or `target` is empty), or what `instance`
    /// threw, in which case the kit closes the new comm.
    @discardableResult
    public func open<Handler: CommHandler>(_ type: Handler.Type = Handler.self, target: String, id: String? = nil,
                                           _ message: CommMessage = CommMessage(),
                                           instance make: (Comm) throws -> Handler) throws -> Comm {
        let what = "opening a \"\(target)\" comm for handler \"\(Handler.handlerName)\" in session \(self.id)"
        guard SerializedContext.isCurrent(handle) else {
            throw PluginError(.failed, "\(what) off the session's serialized context; open from a callback "
                + "of the session, or from a task given to session.post")
        }
        guard let slot = runtime.slot(named: Handler.handlerName), slot.type == Handler.self else {
            throw PluginError(.invalidArgument, "\(what): the library does not export \(Handler.self); "
                + "list it in PluginExport.descriptor(handlers:)")
        }
        let table = try host.liveTable(for: what)
        let box = InstanceBox(slot: slot, runtime: runtime)
        let pointer = box.retainedPointer()
        let (status, handle) = table.open(session: self.handle, handler: slot.name, target: target, id: id ?? "",
                                          message: message, instance: pointer)
        guard status == .ok else {
            box.releaseHostReference()
            throw PluginError(status, "\(what) failed: \(Comm.explain(status))")
        }
        guard let handle else {
            // The host holds the instance now and will close it.
            throw PluginError(.failed, "\(what): the host reported success but gave back no comm")
        }
        let comm = Comm(adopting: handle, session: self)
        box.attach(comm)
        do {
            box.handler = try make(comm)
        } catch {
            // The close callback comes later and finds no instance to tell.
            _ = table.close(handle, CommMessage())
            throw error
        }
        return comm
    }

    /// Runs `task` on this session's serialized context, after the callback
    /// running there now, never alongside another call of the session. From
    /// any thread. The task does not run if the session ends first. What it
    /// throws is logged. Throws ``PluginError`` (``PluginStatus/closed`` once
    /// the session has ended).
    public func post(_ task: @escaping @Sendable () throws -> Void) throws {
        try ScheduledTask(session: self, repeats: false, what: "a task of session \(id)", body: task).post(comm: nil)
    }

    /// Runs `task` on this session's serialized context `delay` from now and
    /// then, when `period` is given, every `period` (a period is skipped while
    /// the previous run has not finished), until cancelled or the session
    /// ends. From any thread. What it throws is logged. Throws as ``post(_:)``.
    @discardableResult
    public func startTimer(after delay: Duration, every period: Duration? = nil,
                           _ task: @escaping @Sendable () throws -> Void) throws -> HostTimer {
        try ScheduledTask(session: self, repeats: period != nil, what: "a timer of session \(id)", body: task)
            .startTimer(comm: nil, delay: delay, period: period)
    }

    // MARK: Kit internals

    /// session_start: asks the library for this session's state.
    func start(cause: SessionCause) throws {
        storedState = try runtime.library.sessionStarted(self, cause: cause)
    }

    /// session_end (or the library's retirement): drops the state.
    func end() {
        storedState = nil
    }
}
