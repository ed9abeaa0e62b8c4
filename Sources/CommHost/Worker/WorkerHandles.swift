/// What the worker knows of the host's handles, so it can answer the host
/// functions that only read (comm_id, target_name, comm_session,
/// session_id, session_data) without a round trip. Names come from the
/// host: a comm's in its open or restore request (`WorkerComm`) or in the
/// reply to the plugin's own open; a session's in `sessionStart` or with its
/// comms. They stay readable while the handle is valid: a comm's until its
/// close request has run (or its open failed) and the plugin holds no
/// reference; a session's until its session_end has run, the plugin holds no
/// reference and no known comm belongs to it. Touched by request threads and
/// the plugin's own threads, so everything is behind one lock.
final class WorkerHandles: Sendable {
    private struct CommEntry {
        var names: HandleNames
        var session: UInt64
        var references = 0
        var closed = false
        /// The plugin closed it (its close request has not run yet).
        var closedByPlugin = false
    }

    private struct SessionEntry {
        var names: HandleNames
        var data: UnsafeMutableRawPointer? = nil
        var started = false
        var references = 0
        var comms = 0
        /// Past the host's high-water mark: sends answer EAGAIN until session_writable.
        var blocked = false
    }

    private struct State {
        var comms: [UInt64: CommEntry] = [:]
        var sessions: [UInt64: SessionEntry] = [:]
        /// How many of them are blocked: while none is, a send needs no
        /// look-up of its session.
        var blockedSessions = 0
    }

    // The session data pointers in it belong to the plugin; the worker only hands them back.
    private let state = Locked(State())

    // MARK: Comms

    /// The host announced a comm in an open or restore request.
    func commArrived(_ comm: WorkerComm) {
        state.withLock { state in
            if state.sessions[comm.session] == nil {
                state.sessions[comm.session] = SessionEntry(names: HandleNames(comm.sessionID))
            }
            Self.addComm(&state, token: comm.token, id: comm.id, target: comm.targetName, session: comm.session)
        }
    }

    /// The plugin's open succeeded: the host named the comm `id`; the plugin
    /// holds a reference when it asked for one.
    func commOpened(token: UInt64, id: String, target: String, session: UInt64, referenced: Bool) {
        state.withLock { state in
            Self.addComm(&state, token: token, id: id, target: target, session: session)
            if referenced { state.comms[token]?.references += 1 }
        }
    }

    /// The comm's close request has run, or its open or restore failed: the
    /// host is done with it.
    func commClosed(_ token: UInt64) {
        state.withLock { state in
            state.comms[token]?.closed = true
            Self.dropCommIfDone(&state, token)
        }
    }

    /// The host accepted the plugin's own close of `token`.
    func commClosedByPlugin(_ token: UInt64) {
        state.withLock { $0.comms[token]?.closedByPlugin = true }
    }

    /// How a send on comm `token` would fare, as far as the worker knows.
    enum SendCheck {
        /// Open, and its session is not past the high-water mark.
        case open
        /// Closed (by the host or by the plugin).
        case closed
        /// Its session is past the high-water mark.
        case blocked
        /// The worker does not know the comm: only the host can say.
        case unknown
    }

    /// What the worker can answer for a send on `token` (a pipelined callback's send).
    func sendCheck(_ token: UInt64) -> SendCheck {
        state.withLock { state in
            guard let entry = state.comms[token] else { return .unknown }
            if entry.closed || entry.closedByPlugin { return .closed }
            guard state.blockedSessions > 0 else { return .open }
            return state.sessions[entry.session]?.blocked == true ? .blocked : .open
        }
    }

    /// The host says sends in `session` must wait (true), or may go on (false, at session_writable).
    func setSessionBlocked(_ token: UInt64, _ blocked: Bool) {
        state.withLock { state in
            guard let was = state.sessions[token]?.blocked, was != blocked else { return }
            state.sessions[token]?.blocked = blocked
            state.blockedSessions += blocked ? 1 : -1
        }
    }

    /// The host accepted retain_comm (+1) or release_comm (-1).
    func commReferenceChanged(_ token: UInt64, by change: Int) {
        state.withLock { state in
            state.comms[token]?.references += change
            Self.dropCommIfDone(&state, token)
        }
    }

    /// The names of comm `token` (id, target name), if the worker knows it.
    func commNames(_ token: UInt64) -> HandleNames? {
        state.withLock { $0.comms[token]?.names }
    }

    /// The session of comm `token`, if the worker knows it.
    func commSession(_ token: UInt64) -> UInt64? {
        state.withLock { $0.comms[token]?.session }
    }

    // MARK: Sessions

    /// A sessionStart request is about to run for `token`.
    func sessionStarting(_ token: UInt64, id: String) {
        state.withLock { state in
            if state.sessions[token] == nil { state.sessions[token] = SessionEntry(names: HandleNames(id)) }
            state.sessions[token]?.started = true
        }
    }

    /// What session_start stored for `token` (also when it failed: session_end still runs).
    func setSessionData(_ token: UInt64, _ data: UnsafeMutableRawPointer?) {
        state.withLock { $0.sessions[token]?.data = data }
    }

    /// The session's session_end has run: its data is gone.
    func sessionEnded(_ token: UInt64) {
        state.withLock { state in
            state.sessions[token]?.data = nil
            state.sessions[token]?.started = false
            Self.dropSessionIfDone(&state, token)
        }
    }

    /// The host accepted retain_session (+1) or release_session (-1).
    func sessionReferenceChanged(_ token: UInt64, by change: Int) {
        state.withLock { state in
            state.sessions[token]?.references += change
            Self.dropSessionIfDone(&state, token)
        }
    }

    /// The names of session `token` (its id), if the worker knows it.
    func sessionNames(_ token: UInt64) -> HandleNames? {
        state.withLock { $0.sessions[token]?.names }
    }

    /// What session_start stored for `token`; nil when nothing or unknown.
    func sessionData(_ token: UInt64) -> UnsafeMutableRawPointer? {
        state.withLock { $0.sessions[token]?.data }
    }

    // MARK: Bookkeeping

    private static func addComm(_ state: inout State, token: UInt64, id: String, target: String, session: UInt64) {
        if state.comms[token] != nil {
            // The same comm again (restored into the worker that served it):
            // the names are unchanged, and the plugin may hold slices of them.
            state.comms[token]?.closed = false
            return
        }
        state.comms[token] = CommEntry(names: HandleNames(id, target), session: session)
        state.sessions[session]?.comms += 1
    }

    private static func dropCommIfDone(_ state: inout State, _ token: UInt64) {
        guard let entry = state.comms[token], entry.closed, entry.references <= 0 else { return }
        state.comms[token] = nil
        state.sessions[entry.session]?.comms -= 1
        dropSessionIfDone(&state, entry.session)
    }

    private static func dropSessionIfDone(_ state: inout State, _ token: UInt64) {
        guard let entry = state.sessions[token], !entry.started, entry.references <= 0, entry.comms <= 0 else { return }
        if state.sessions.removeValue(forKey: token)?.blocked == true { state.blockedSessions -= 1 }
    }
}
