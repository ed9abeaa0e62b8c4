import CommPluginAPI

/// The host object behind a plugin's `commhost_comm *`. The Plugins layer
/// only knows this base class; the Comms layer's `Comm` gives the host
/// functions their meaning by overriding the `host…` methods. The handle a
/// plugin sees is a token of `CommHandle.table`, never this object's address.
class CommHandle: @unchecked Sendable {
    // @unchecked: `id` and `token` are immutable after init; subclasses
    // guard their own state.

    /// Every comm handle of the process.
    static let table = HandleTable<CommHandle>()

    /// The comm id, as Swift text.
    let id: String
    /// The token plugins hold.
    private(set) var token: UInt = 0

    /// Registers the comm; the host holds it until `releaseHandle()`. The
    /// target name is kept only as the text plugins read (the comm layer
    /// has its own).
    init(id: String, targetName: String) {
        self.id = id
        token = Self.table.register(self, names: HandleNames(id, targetName))
    }

    /// The handle value passed to plugins.
    var opaque: OpaquePointer { OpaquePointer(bitPattern: token)! }

    /// The host is done with the comm (its close callback returned, or it
    /// never opened): from now on the handle only answers `ECLOSED`, and dies
    /// once the plugin's references are given back.
    func releaseHandle() {
        Self.table.hostRelease(token)
    }

    /// host->send, by `library`. Overridden by the comm layer.
    func hostSend(from library: PluginLibrary, _ message: UnsafePointer<commhost_message>?) -> commhost_status { COMMHOST_ECLOSED }

    /// host->close, by `library`. Overridden by the comm layer.
    func hostClose(from library: PluginLibrary, _ message: UnsafePointer<commhost_message>?) -> commhost_status { COMMHOST_ECLOSED }

    /// host->comm_session. Overridden by the comm layer.
    var hostSession: SessionHandle? { nil }
}

/// The host object behind a plugin's `commhost_session *`; the Comms layer's
/// `Session` overrides the `host…` methods.
class SessionHandle: @unchecked Sendable {
    // @unchecked: `token` and `idText` are immutable after init.

    /// Every session handle of the process.
    static let table = HandleTable<SessionHandle>()

    /// The session id as text.
    let idText: String
    /// The token plugins hold.
    private(set) var token: UInt = 0

    /// Registers the session; the host holds it until `releaseHandle()`.
    init(idText: String) {
        self.idText = idText
        token = Self.table.register(self, names: HandleNames(idText))
    }

    /// The handle value passed to plugins.
    var opaque: OpaquePointer { OpaquePointer(bitPattern: token)! }

    /// The host is done with the session (every session_end has run).
    func releaseHandle() {
        Self.table.hostRelease(token)
    }

    /// host->open in this session, by `library`; with `retain`, the new
    /// comm comes with a plugin reference taken before anything can close
    /// it. Overridden by the comm layer.
    func hostOpen(from library: PluginLibrary, handlerName: String, targetName: String, commID: String,
                  message: UnsafePointer<commhost_message>?, instance: UnsafeMutableRawPointer?,
                  retain: Bool) -> (commhost_status, CommHandle?) {
        (COMMHOST_ECLOSED, nil)
    }

    /// host->session_data for `library`. Overridden by the comm layer.
    func hostSessionData(for library: PluginLibrary) -> UnsafeMutableRawPointer? { nil }

    /// host->post and host->timer_start on this session (or on `comm`, one
    /// of its comms), by `library`: `period` nil for a post. Overridden by
    /// the comm layer. Returns the status and the timer id (0 for a post).
    func hostSchedule(from library: PluginLibrary, comm: CommHandle?, delayMilliseconds: UInt64, periodMilliseconds: UInt64?,
                      task: PluginTaskFunction) -> (commhost_status, UInt64) {
        (COMMHOST_ECLOSED, 0)
    }
}

/// A plugin's task function and its data (post, timer_start).
struct PluginTaskFunction: @unchecked Sendable {
    // @unchecked: `data` is the plugin's; the host only passes it back, on
    // the task's serialized context.
    let function: commhost_task_fn
    let data: UnsafeMutableRawPointer?
}

/// Timers by id, for host->timer_cancel: each entry cancels itself on its
/// session when asked.
enum PluginTimers {
    /// A timer that timer_cancel can reach.
    protocol Cancellable: AnyObject, Sendable {
        /// Cancels the timer; false when it has already had its last call
        /// or a cancel is already under way.
        func cancel() -> Bool
    }

    /// Guards the timers by id: plugins start and cancel them from any thread.
    private static let live = Locked<[UInt64: any Cancellable]>([:])
    /// Guards the next timer id.
    private static let nextID = Locked<UInt64>(1)

    /// Registers `timer` under a new id.
    static func register(_ timer: any Cancellable) -> UInt64 {
        let id = nextID.withLock { next in
            defer { next += 1 }
            return next
        }
        live.withLock { $0[id] = timer }
        return id
    }

    /// Forgets `id` (its last call is done or decided).
    static func remove(_ id: UInt64) {
        live.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// host->timer_cancel.
    static func cancel(_ id: UInt64) -> Bool {
        guard let timer = live.withLock({ $0[id] }) else { return false }
        return timer.cancel()
    }
}
