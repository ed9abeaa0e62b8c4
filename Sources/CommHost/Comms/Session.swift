import CommPluginAPI
import Dispatch
import Glibc
import Synchronization

/// One client connection: its comm table, its ordered outbound frames, the
/// libraries serving it (session_start/session_end), the plugin tasks on its
/// context, and the comm rules (DESIGN.md, "The comm rules").
///
/// The session composes the mechanisms the rules need, each its own type:
/// `SerialContext` (the serialized context and its queued jobs),
/// `OutboundQueue` (the bytes toward the client and the writer hand-off,
/// in Transport), `OutgoingCheck` (what plugins hand the host, in Plugins)
/// and `SessionPort` (the object behind `commhost_session *`).
///
/// Threading: everything that calls into a plugin for this session runs in
/// the session's serialized context (`serialized`), so the calls for one
/// session never overlap or re-enter. Host functions may come from any
/// thread: sends and opens go straight to the output (one lock, so frames
/// leave in the order they were issued); close callbacks and tasks they
/// cause are queued as jobs for the serialized context, run right after the
/// current callback when they came from inside one.
public final class Session: @unchecked Sendable {
    // @unchecked: see the guard named on each mutable property.

    /// A number unique among the manager's sessions, for logs.
    public let id: Int
    /// The handle plugins hold for this session.
    let port: SessionPort
    private let manager: CommManager
    private let limits: ManifestLimits
    private let parser: FrameParser
    private let logger: Logger
    private let trace: FrameTrace?

    /// Sessions alive in the process (for tests that check ended ones are freed).
    static let live = Atomic<Int>(0)

    /// The frames toward the client. Its lock also guards `encoder`,
    /// `ending`, `blocked`, `writableQueued` and every comm's `closed`: what
    /// must change in step with what is queued. The ones every frame touches
    /// skip Swift's run-time exclusivity check (`@exclusivity(unchecked)`,
    /// about 250 instructions a message): the lock already makes each
    /// access exclusive.
    private let output = OutboundQueue()
    @exclusivity(unchecked) private var encoder: FrameEncoder
    /// Set when the session begins to end: host open and scheduling refuse from then on.
    @exclusivity(unchecked) private var ending = false
    /// Libraries that got `COMMHOST_EAGAIN` and wait for session_writable
    /// (looked at after every write, so unchecked as well).
    @exclusivity(unchecked) private var blocked: [PluginLibrary] = []
    /// A `.writable` job is queued and has not run yet.
    private var writableQueued = false
    /// Checks what plugins hand the host against this session's limits.
    private let outgoing: OutgoingCheck

    /// Guards the session's comm table: plugin threads and other sessions'
    /// stats requests contend with the session for it.
    private let comms = Locked(CommTable<Comm>())

    /// Serializes plugin calls and runs the jobs queued for them.
    private let context = SerialContext()
    /// The msg_id token of the frame being handled; only the thread inside the serialized context touches it.
    private var currentParent: UnsafeRawBufferPointer?
    /// The `data` and `metadata` bytes of the frame being handled, which the
    /// parser has validated, and whether that frame holds no line break;
    /// only the thread inside the serialized context touches them.
    private var currentInbound: InboundBytes?
    private typealias InboundBytes = (data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, oneLine: Bool)
    /// Set when the session ends; frames after that are ignored. Touched only inside the serialized context.
    private var inputClosed = false
    /// Guards the libraries serving this session and their session data, in
    /// session_start order. Written on the serialized context; read by
    /// session_data from any thread, hence the lock.
    private let bindings = Locked<[Binding]>([])
    /// Guards the tasks that have not had their last call. `closed` is set when the
    /// session's tasks are finished for good: no task is added after it.
    private let tasks = Locked<(list: [SessionTask], closed: Bool)>(([], false))
    /// comm_msg callbacks sent to a worker without waiting
    /// (`SessionPipelinedCall`) whose reply has not come yet: counted without
    /// a lock (the session's thread adds, the worker's reader subtracts);
    /// `pipeline` is what a thread waiting for none sleeps on, taken by the
    /// reader only to wake it when the count reaches 0.
    private let pipelinedCalls = Atomic<Int>(0)
    private let pipeline = ConditionLock()
    /// The library those calls went to; only the thread inside the serialized context touches it. Frames
    /// go on being pipelined only while they are comm_msgs to that library's
    /// worker (which answers in order); any other frame first waits for
    /// them, so what it causes leaves after their replies, as in-process.
    private var pipelinedLibrary: PluginLibrary?

    private struct Binding {
        let library: PluginLibrary
        var data: UnsafeMutableRawPointer?
    }

    init(id: Int, manager: CommManager) {
        self.id = id
        self.manager = manager
        limits = manager.limits
        logger = manager.logger
        trace = manager.trace
        parser = FrameParser(dialect: manager.dialect, limits: manager.limits.wire)
        outgoing = OutgoingCheck(maxFrameBytes: manager.limits.maxFrameBytes, maxDepth: manager.limits.maxDepth)
        encoder = manager.repeatableIDs ? FrameEncoder(dialect: manager.dialect, msgIDPrefix: "host") : FrameEncoder(dialect: manager.dialect)
        port = SessionPort(idText: String(id))
        port.session = self
        output.owner = self
        Self.live.add(1, ordering: .relaxed)
    }

    deinit {
        Self.live.subtract(1, ordering: .relaxed)
    }

    // MARK: Input

    /// Handles one inbound frame (a line without its newline). `line` is its
    /// 1-based line number in the input, reported on error frames.
    public func receive(_ frame: UnsafeRawBufferPointer, line: Int) {
        serialized {
            guard !inputClosed else { return }
            handle(frame, line: line)
        }
    }

    /// Reports a frame that was longer than the limit and skipped unread.
    public func receiveTooLong(line: Int, byteCount: Int) {
        emitError(WireError(.frameTooLong, "frame of \(byteCount)+ bytes is longer than the limit of \(limits.maxFrameBytes) bytes; skipped"),
                  line: line, parent: nil)
    }

    /// True once the session accepts no more frames (ended, or its client
    /// fell too far behind).
    public var isEnded: Bool { output.isEnded }

    /// Why the session ended early (outbound bound exceeded), if it did.
    public var earlyEndReason: String? { output.earlyEndReason }

    /// Sets what to do when the session ends early (its client fell more
    /// than `limits.maxOutboundBytes` behind): typically wake the transport's
    /// reader and writer so the client is disconnected at once. `body` runs
    /// once, holding the session's output lock, so it must not call back
    /// into the session. Runs at once if the session already ended early.
    public func whenEndedEarly(_ body: @escaping @Sendable () -> Void) {
        output.whenEndedEarly(body)
    }

    private func handle(_ frame: UnsafeRawBufferPointer, line: Int) {
        trace?.record(session: id, inbound: true, line: line, frame: frame)
        let scanned: ScannedFrame
        do {
            scanned = try parser.scan(frame)
        } catch {
            let parent = parser.messageIDToken(ofRefused: frame).map { $0.bytes(in: frame) }
            emitError(error, line: line, parent: parent)
            return
        }
        currentParent = scanned.msgIDToken.map { $0.bytes(in: frame) }
        defer { currentParent = nil }
        if scanned.kind != .commMsg { awaitPipelinedCalls() }
        let data = scanned.data.map { $0.bytes(in: frame) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let metadata = scanned.metadata.map { $0.bytes(in: frame) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
        currentInbound = (data, metadata, !scanned.hasLineBreak)
        defer { currentInbound = nil }
        switch scanned.kind {
        case .commOpen:
            clientOpen(scanned.inbound(in: frame), data: data, metadata: metadata, line: line)
        case .commMsg:
            // The comm is found by the id's raw bytes: no String on this path
            // unless the id is unknown. The closures below capture the buffers,
            // not the whole frame, which would be copied once more per message.
            let buffers = scanned.buffers
            // Unretained: a comm in the table is held by its handle until its
            // close callback, which runs on this serialized context, so after
            // this frame. No reference count is taken on this path for the
            // comm, its handler or its library.
            let found = comms.withLock { table in scanned.withCommID(in: frame) { table.unretained(utf8: $0) } }
            guard let found else {
                let commID = scanned.commIDString(in: frame)
                awaitPipelinedCalls()
                logger.info("comm_msg for an unknown or closed comm; replying comm_close",
                            [("session", .int(id)), ("line", .int(line)), ("comm_id", .string(commID))])
                emitClose(id: commID, reason: "no open comm \(JSONText.string(commID)) in this session")
                return
            }
            found._withUnsafeGuaranteedRef { comm in
                Unmanaged.passUnretained(comm.handler)._withUnsafeGuaranteedRef { handler in
                    deliver(data: data, metadata: metadata, buffers: buffers, to: comm, handler: handler, line: line)
                }
            }
        case .commClose:
            let parsed = scanned.inbound(in: frame)
            guard let comm = comms.withLock({ $0.removeValue(forKey: parsed.commID) }) else { return }
            output.withLock { comm.closed = true }
            MessageView.with(data: data, metadata: metadata, buffers: parsed.buffers) { message in
                runClose(comm, cause: .client, message: message)
            }
        case .commInfoRequest:
            let parsed = scanned.inbound(in: frame)
            let listed = comms.withLock { table in
                table.values.filter { parsed.targetName == nil || $0.targetName == parsed.targetName }
                    .map { (commID: $0.id, targetName: $0.targetName) }
            }.sorted { $0.commID < $1.commID }
            emit { encoder, out in encoder.commInfoReply(into: &out, comms: listed, parent: currentParent) }
        case .statsRequest:
            let content = manager.statsSnapshot().json
            emit { encoder, out in
                content.withUnsafeBytes { encoder.raw(into: &out, msgType: "commhost_stats_reply", contentJSON: $0, parent: currentParent) }
            }
        }
    }

    /// Calls `handler`'s message callback for `comm` (a client's comm_msg)
    /// with the frame's data, metadata and buffers, and counts it.
    @inline(__always)
    private func deliver(data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, buffers: BufferList,
                         to comm: Comm, handler: Handler, line: Int) {
        let stats = comm.stats
        stats.messagesIn.add(1, ordering: .relaxed)
        let library = handler.library
        guard library.worker == nil else {
            return deliverToWorker(data: data, metadata: metadata, buffers: buffers, to: comm, line: line)
        }
        awaitPipelinedCalls()
        let instance = comm.instance, handle = comm.opaque, unretained = Unmanaged<CommHandle>.passUnretained(comm)
        let start = MonotonicClock.nanoseconds()
        let failure = MessageView.with(data: data, metadata: metadata, buffers: buffers) { message -> PluginCallError? in
            do throws(PluginCallError) {
                try handler.message(instance: instance, comm: unretained, handle: handle, message: message)
                return nil
            } catch {
                return error
            }
        }
        record(comm, "comm_msg", since: start, stats: stats, library: library)
        if let failure { reportHandlerError(failure, comm: comm, during: "comm_msg", line: line) }
    }

    /// `deliver` for a comm served by a worker process: the call may be
    /// pipelined (`SessionPipelinedCall`), and then records its own time.
    private func deliverToWorker(data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, buffers: BufferList,
                                 to comm: Comm, line: Int) {
        let library = comm.handler.library
        if library !== pipelinedLibrary { awaitPipelinedCalls() }
        let offer = SessionPipelinedCall(session: self, comm: comm, parent: currentParent, data: data, metadata: metadata, line: line)
        CallContext.current.pipelineOffer = offer
        defer { CallContext.current.pipelineOffer = nil }
        do {
            try MessageView.with(data: data, metadata: metadata, buffers: buffers) { message in
                Result { () throws(PluginCallError) in
                    try timed(comm, "comm_msg", library: library, unless: offer) { () throws(PluginCallError) in
                        try comm.handler.message(instance: comm.instance, comm: comm, message: message)
                    }
                }
            }.get()
        } catch {
            reportHandlerError(error, comm: comm, during: "comm_msg", line: line)
        }
        if offer.wasDispatched { pipelinedLibrary = library }
    }

    private func clientOpen(_ frame: InboundFrame, data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, line: Int) {
        let target = frame.targetName ?? ""
        // A live id is refused before the target is looked up: the comm_close
        // an unknown target gets would close the live comm on the client.
        guard !comms.withLock({ $0[frame.commID] != nil }) else {
            emitCommExists(frame.commID, line: line)
            return
        }
        guard let handler = manager.targets.handler(for: target) else {
            if let reason = manager.targets.unavailableReason(for: target) {
                logger.warning("comm_open for a target that is not served now; replying comm_close with the reason",
                               [("session", .int(id)), ("comm_id", .string(frame.commID)), ("target_name", .string(target)),
                                ("reason", .string(reason))])
                emitClose(id: frame.commID, reason: reason)
                return
            }
            logger.warning("comm_open for an unknown target; replying comm_close",
                           [("session", .int(id)), ("comm_id", .string(frame.commID)), ("target_name", .string(target))])
            emitClose(id: frame.commID, reason: "no target \(JSONText.string(target)) is served here")
            return
        }
        let comm = Comm(id: frame.commID, targetName: target, session: self, handler: handler)
        enum Insert { case inserted, exists, full }
        let outcome = comms.withLock { table -> Insert in
            if table[frame.commID] != nil { return .exists }
            if table.count >= limits.maxCommsPerSession { return .full }
            table[frame.commID] = comm
            return .inserted
        }
        switch outcome {
        case .exists:
            // A plugin thread opened this id since the check above.
            emitCommExists(frame.commID, line: line)
            return
        case .full:
            emitError(WireError(ename: "TooManyComms", evalue: "comm_open: this session already has \(limits.maxCommsPerSession) comms open (limits.max_comms_per_session); comm \"\(frame.commID)\" was not opened"),
                      line: line, parent: currentParent)
            emitClose(id: frame.commID, reason: "too many comms open in this session (limits.max_comms_per_session)")
            return
        case .inserted:
            break
        }
        do {
            let instance = try MessageView.with(data: data, metadata: metadata, buffers: frame.buffers) { message in
                Result { () throws(PluginCallError) in
                    try timed(comm, "open") { () throws(PluginCallError) in try handler.open(comm: comm, message: message) }
                }
            }.get()
            comm.instance = instance
            comm.needsCloseCallback = true
            comm.stats.opened.add(1, ordering: .relaxed)
        } catch {
            comms.withLock { table in
                if table[comm.id] === comm { table[comm.id] = nil }
            }
            let alreadyClosed = output.withLock { () -> Bool in
                defer { comm.closed = true }
                return comm.closed
            }
            if !alreadyClosed { emitClose(id: comm.id, reason: "open failed: \(error)") }
            finishTasks { $0.comm === comm }
            comm.releaseHandle()
            reportHandlerError(error, comm: comm, during: "comm_open", line: line)
        }
    }

    private func emitCommExists(_ commID: String, line: Int) {
        emitError(WireError(ename: "CommExists", evalue: "comm_open: comm_id \"\(commID)\" is already open in this session; the open comm is unchanged"),
                  line: line, parent: currentParent)
    }

    // MARK: Host functions (any thread)

    func pluginSend(on comm: Comm, from library: PluginLibrary, _ message: UnsafePointer<commhost_message>?) -> commhost_status {
        // Whether this thread is inside the serialized context, asked once
        // for the parent header and both checks of the inbound bytes.
        let owner = isOwner
        let parent = owner ? currentParent : foreignCallParent
        let inbound = owner ? currentInbound : nil
        // The plugin's struct read once, for the check and for the frame.
        let read = message.map(ABIStruct.message)
        let checked = outgoing.checkOutgoing(read: read, commID: comm.id, parent: parent) {
            isValidatedInbound($0, $1, owner: owner, inbound: inbound)
        }
        guard checked == COMMHOST_OK else { return refused("send", checked, comm: comm, library: library) }
        let status = OutgoingCheck.withOutgoing(read: read) { data, metadata, buffers in
            let oneLine = isOneLineInbound(data, inbound: inbound)
            return emitChecked(comm: comm, from: library) { encoder, out in
                encoder.commMsg(into: &out, commID: comm.id, data: data, metadata: metadata, buffers: buffers, parent: parent,
                                dataIsOneLine: oneLine)
                // Counted before the frame can reach the client, so a stats
                // request sent after its reply arrived always includes it.
                comm.stats.messagesOut.add(1, ordering: .relaxed)
            }
        }
        return status == COMMHOST_OK || status == COMMHOST_EAGAIN ? status : refused("send", status, comm: comm, library: library)
    }

    /// A plugin's send or close the host refused, logged at debug (for
    /// `commhost try` and `inspect --check`, which name the rule it broke).
    private func refused(_ call: String, _ status: commhost_status, comm: Comm, library: PluginLibrary) -> commhost_status {
        logger.debug("a plugin's \(call) was refused", [("session", .int(id)), ("plugin", .string(library.name)), ("comm_id", .string(comm.id)),
                                                       ("status", .string(PluginCallError.name(of: status))),
                                                       ("error", .string(CallContext.current.errorText ?? ""))])
        return status
    }

    func pluginClose(_ comm: Comm, from library: PluginLibrary, _ message: UnsafePointer<commhost_message>?) -> commhost_status {
        let parent = callParent
        let status = checkOutgoing(message, commID: comm.id, parent: parent)
        guard status == COMMHOST_OK else { return refused("close", status, comm: comm, library: library) }
        let sent = withOutgoing(message) { data, metadata, buffers in
            emitChecked(comm: comm, closing: true) { encoder, out in
                encoder.commClose(into: &out, commID: comm.id, data: data, metadata: metadata, buffers: buffers, parent: parent)
            }
        }
        guard sent == COMMHOST_OK else { return refused("close", sent, comm: comm, library: library) }
        comms.withLock { table in
            if table[comm.id] === comm { table[comm.id] = nil }
        }
        enqueue(.close(comm, .plugin, OwnedMessage(copying: message)))
        return COMMHOST_OK
    }

    func pluginOpen(from library: PluginLibrary, handlerName: String, targetName: String, commID: String,
                    message: UnsafePointer<commhost_message>?, instance: UnsafeMutableRawPointer?,
                    retain: Bool) -> (commhost_status, CommHandle?) {
        guard !targetName.isEmpty else { return (COMMHOST_EINVAL, nil) }
        guard let handler = library.handler(named: handlerName) else {
            logger.warning("plugin open names a handler its library does not export; refused",
                           [("session", .int(id)), ("plugin", .string(library.name)), ("handler", .string(handlerName))])
            return (COMMHOST_EINVAL, nil)
        }
        let id = commID.isEmpty ? generatedCommID() : commID
        let parent = callParent
        let checked = checkOutgoing(message, commID: id, parent: parent, extra: targetName.utf8.count)
        guard checked == COMMHOST_OK else { return (checked, nil) }
        var opened: Comm?
        let status = withOutgoing(message) { data, metadata, buffers in
            // Registering and announcing happen under one lock, so no client
            // frame can reach the comm before its comm_open has gone out, and
            // no comm is created once the session is ending or the library is
            // being replaced by a reload.
            output.lock()
            defer { output.unlock() }
            guard !ending, library.isAccepting else { return COMMHOST_ECLOSED }
            guard output.queuedBytes < limits.outboundHighWaterBytes else { return refuseForBackpressure(library) }
            if comms.withLock({ $0[id] != nil }) { return COMMHOST_EEXISTS }
            let comm = Comm(id: id, targetName: targetName, session: self, handler: handler)
            let inserted = comms.withLock { table -> commhost_status in
                if table[id] != nil { return COMMHOST_EEXISTS }
                if table.count >= limits.maxCommsPerSession { return COMMHOST_ELIMIT }
                table[id] = comm
                return COMMHOST_OK
            }
            guard inserted == COMMHOST_OK else {
                comm.releaseHandle()
                return inserted
            }
            comm.instance = instance
            comm.needsCloseCallback = true
            if retain { _ = CommHandle.table.retain(comm.token) }
            comm.stats.opened.add(1, ordering: .relaxed)
            let start = output.pending.count
            encoder.commOpen(into: &output.pending, commID: id, targetName: targetName, data: data, metadata: metadata, buffers: buffers, parent: parent)
            afterAppend(from: start, origin: library)
            opened = comm
            return COMMHOST_OK
        }
        return (status, status == COMMHOST_OK ? opened : nil)
    }

    /// host->post and host->timer_start.
    func pluginSchedule(from library: PluginLibrary, comm: Comm?, delayMilliseconds: UInt64, periodMilliseconds: UInt64?,
                        task function: PluginTaskFunction) -> (commhost_status, UInt64) {
        let nanoseconds = delayMilliseconds.multipliedReportingOverflow(by: 1_000_000)
        let period = periodMilliseconds.map { $0.multipliedReportingOverflow(by: 1_000_000) }
        guard !nanoseconds.overflow, period?.overflow != true else { return (COMMHOST_EINVAL, 0) }
        let repeating = period.flatMap { $0.partialValue == 0 ? nil : $0.partialValue }
        let task = SessionTask(library: library, comm: comm, function: function, period: repeating, session: self)
        let isTimer = periodMilliseconds != nil
        let status = output.withLock { () -> commhost_status in
            guard !ending, !(comm?.closed ?? false) else { return COMMHOST_ECLOSED }
            return tasks.withLock { tasks in
                guard !tasks.closed else { return COMMHOST_ECLOSED }
                tasks.list.append(task)
                return COMMHOST_OK
            }
        }
        guard status == COMMHOST_OK else { return (status, 0) }
        let timer = isTimer ? task.registerTimer() : 0
        task.arm(afterNanoseconds: nanoseconds.partialValue)
        return (COMMHOST_OK, timer)
    }

    /// host->session_data for `library`.
    func sessionData(for library: PluginLibrary) -> UnsafeMutableRawPointer? {
        bindings.withLock { list in list.first { $0.library === library }?.data }
    }

    // MARK: Libraries (session_start, session_end)

    /// Starts the session for `libraries` (session_start with cause
    /// `started`), on the serialized context. Called once, before the first
    /// frame is handled.
    func start(libraries: [PluginLibrary]) {
        logger.debug("starting the session for its libraries", [("session", .int(id)), ("libraries", .string(libraries.map(\.name).joined(separator: ",")))])
        serialized {
            for library in libraries { startLibrary(library, cause: .started) }
        }
    }

    /// session_start for one library; call on the serialized context.
    func startLibrary(_ library: PluginLibrary, cause: SessionCause) {
        bindings.withLock { $0.append(Binding(library: library, data: nil)) }
        var data: UnsafeMutableRawPointer?
        do {
            try library.sessionStart(port, cause: cause, data: &data)
        } catch {
            logger.error("session_start failed; the session goes on", [("session", .int(id)), ("plugin", .string(library.name)),
                                                                       ("status", .int(Int(error.status))), ("error", .string(error.text ?? ""))])
        }
        bindings.withLock { list in
            if let index = list.firstIndex(where: { $0.library === library }) { list[index].data = data }
        }
    }

    /// session_end for one library, after its tasks here have had their last
    /// call; call on the serialized context once its comms here are gone.
    func endLibrary(_ library: PluginLibrary, cause: SessionCause) {
        guard let binding = bindings.withLock({ list -> Binding? in
            guard let index = list.firstIndex(where: { $0.library === library }) else { return nil }
            return list.remove(at: index)
        }) else { return }
        finishTasks { $0.library === library }
        library.sessionEnd(port, data: binding.data, cause: cause)
    }

    /// The libraries serving the session, in session_start order.
    var libraries: [PluginLibrary] { bindings.withLock { $0.map(\.library) } }

    // MARK: Closing

    /// Ends the session: every open comm gets its close callback with
    /// `cause` (no frame is sent for them), every task its last call, every
    /// library its session_end, and the output is finished. Once it has
    /// begun, host open and scheduling in this session return ECLOSED.
    public func end(cause: CloseCause) {
        // What the client sent before the end is answered first.
        waitForPipelinedCalls()
        output.withLock {
            ending = true
            blocked.removeAll()
        }
        serialized {
            inputClosed = true
            // Until no comm is left: a client comm_open handled while the
            // ending began may have added one. Closes and tasks queued
            // meanwhile (a plugin thread's close) run here too, so
            // session_end comes after every close callback.
            while true {
                let all = output.withLock { () -> [Comm] in
                    let all = comms.withLock { table -> [Comm] in
                        defer { table.removeAll() }
                        return Array(table.values)
                    }
                    for comm in all { comm.closed = true }
                    return all
                }
                guard !all.isEmpty else { break }
                for comm in all {
                    OwnedMessage.empty.withMessage { runClose(comm, cause: cause, message: $0) }
                }
                drainJobs()
            }
            drainJobs()
            tasks.withLock { $0.closed = true }
            for library in libraries.reversed() { endLibrary(library, cause: cause.sessionCause) }
            drainJobs()
        }
        output.withLock {
            output.end()
            blocked.removeAll()
        }
        port.session = nil
        port.releaseHandle()
    }

    // MARK: Reload (the caller is inside the session's serialized context: `CommManager.holdAll`)

    /// Waits until no host open is between its checks and its insertion (for
    /// a reload that has just stopped host open for some libraries).
    func barrier() {
        output.withLock {}
    }

    /// The open comms served by a handler `matching` selects. Call inside the serialized context.
    func comms(servedBy matching: (Handler) -> Bool) -> [Comm] {
        comms.withLock { table in table.values.filter { matching($0.handler) } }
    }

    /// Closes `comm` from the host's side: removes it, sends `comm_close`
    /// with `data` and runs its close callback with `cause` (a target removed
    /// from the manifest, a reload without hand-off). Call inside the serialized context.
    func closeFromHost(_ comm: Comm, cause: CloseCause, data: [UInt8]) {
        comms.withLock { table in
            if table[comm.id] === comm { table[comm.id] = nil }
        }
        data.withUnsafeBytes { data in
            _ = emitChecked(comm: comm, closing: true) { encoder, out in
                encoder.commClose(into: &out, commID: comm.id, data: data, metadata: UnsafeRawBufferPointer(start: nil, count: 0),
                                  buffers: [UnsafeRawBufferPointer](), parent: nil)
            }
        }
        output.withLock { comm.closed = true }
        OwnedMessage(data: data).withMessage { runClose(comm, cause: cause, message: $0) }
    }

    /// Gives every task `matching` selects its last call (`COMMHOST_ECLOSED`):
    /// before a close callback, a session_end, or a hand-off of the comm to a
    /// reloaded library. Call on the serialized context.
    func finishTasks(_ matching: (SessionTask) -> Bool) {
        let selected = tasks.withLock { tasks -> [SessionTask] in
            let selected = tasks.list.filter(matching)
            if !selected.isEmpty { tasks.list.removeAll(where: matching) }
            return selected
        }
        for task in selected where task.markFinished() { task.call(COMMHOST_ECLOSED) }
    }

    /// Runs the close callback once for an opened comm, after its tasks'
    /// last calls, then lets go of its handle.
    private func runClose(_ comm: Comm, cause: CloseCause, message: UnsafePointer<commhost_message>) {
        guard comm.needsCloseCallback else { return }
        comm.needsCloseCallback = false
        finishTasks { $0.comm === comm }
        timed(comm, "close") { comm.handler.close(instance: comm.instance, comm: comm, message: message, cause: cause) }
        comm.instance = nil
        comm.releaseHandle()
    }

    /// Runs one callback for `comm` (`callback` names it), records its time
    /// in the target's stats, and logs a warning when an in-process callback
    /// took longer than its library's `handler_timeout_ms`: it cannot be
    /// interrupted (a worker-served one is killed at the deadline instead).
    /// A pipelined call (`unless`) that went out records its own time when
    /// it ends.
    @inline(__always)
    private func timed<R, E: Error>(_ comm: Comm, _ callback: StaticString, library: PluginLibrary? = nil,
                                    unless pipelined: SessionPipelinedCall? = nil, _ body: () throws(E) -> R) throws(E) -> R {
        let start = MonotonicClock.nanoseconds()
        defer {
            if pipelined?.wasDispatched != true { record(comm, callback, since: start, library: library) }
        }
        return try body()
    }

    /// Records a callback's time in its target's stats (and warns of a slow
    /// in-process one). `library` is the comm's, when the caller has it at hand.
    private func record(_ comm: Comm, _ callback: StaticString, since start: UInt64, library: PluginLibrary? = nil) {
        record(comm, callback, since: start, stats: comm.stats, library: library ?? comm.handler.library)
    }

    @inline(__always)
    private func record(_ comm: Comm, _ callback: StaticString, since start: UInt64, stats: StatsTarget, library: PluginLibrary) {
        let elapsed = MonotonicClock.nanoseconds() &- start
        stats.handlerTime.record(nanoseconds: elapsed)
        guard elapsed > library.slowCallbackNanoseconds else { return }
        warnSlow(comm, callback, elapsed: elapsed, library: library)
    }

    private func warnSlow(_ comm: Comm, _ callback: StaticString, elapsed: UInt64, library: PluginLibrary) {
        if elapsed > library.slowCallbackNanoseconds && library.worker == nil {
            logger.warning("an in-process callback ran longer than handler_timeout_ms; it cannot be interrupted (isolation \"process\" can)",
                           [("session", .int(id)), ("target_name", .string(comm.targetName)), ("comm_id", .string(comm.id)),
                            ("callback", .string("\(callback)")), ("plugin", .string(library.name)),
                            ("elapsed_ms", .int(Int(elapsed / 1_000_000))), ("handler_timeout_ms", .int(Int(library.slowCallbackNanoseconds / 1_000_000)))])
        }
    }

    // MARK: Pipelined calls (comm_msg to a worker, not waited for)

    /// A pipelined call went out.
    func pipelinedCallDispatched() {
        pipelinedCalls.add(1, ordering: .relaxed)
    }

    /// A pipelined call ended: a failure is reported as a callback's failure
    /// is in-process (logged, and an error frame with the frame's parent
    /// header and line), then whoever waits for the calls is woken.
    func pipelinedCallFinished(_ call: SessionPipelinedCall, status: commhost_status, errorText: String?) {
        call.comm.stats.handlerTime.record(nanoseconds: MonotonicClock.nanoseconds() &- call.started)
        if status != COMMHOST_OK {
            reportHandlerError(PluginCallError(status: status, text: errorText), comm: call.comm, during: "comm_msg", line: call.line,
                               parent: call.parent)
        }
        // Releasing: what the call did happens before a waiter sees 0. The
        // waiter checks the count holding `pipeline`, so taking it here
        // before the broadcast cannot miss one about to wait.
        if pipelinedCalls.subtract(1, ordering: .releasing).newValue == 0 {
            pipeline.withLock { pipeline.broadcast() }
        }
    }

    /// On the serialized context: waits until every pipelined call has
    /// ended; nothing to do (one load) when none went out since the last wait.
    private func awaitPipelinedCalls() {
        guard pipelinedLibrary != nil else { return }
        waitForPipelinedCalls()
        pipelinedLibrary = nil
    }

    /// From any thread: waits until every pipelined call has ended. Their
    /// ends come from the worker's reader thread, which never waits for this
    /// session, and a worker that hangs is killed at the deadline, which ends
    /// them all.
    private func waitForPipelinedCalls() {
        // The worker answers only what it has read.
        CallContext.current.releaseHeldFrames()
        pipeline.lock()
        while pipelinedCalls.load(ordering: .acquiring) > 0 { pipeline.wait() }
        pipeline.unlock()
    }

    /// The parent header for a frame a host function called on this thread
    /// writes: the frame being handled on the serialized context; under a
    /// pipelined call of this session (a worker's reader running its host
    /// calls), that call's frame; otherwise none (a plugin thread).
    private var callParent: UnsafeRawBufferPointer? {
        isOwner ? currentParent : foreignCallParent
    }

    /// `callParent` on a thread outside the serialized context.
    private var foreignCallParent: UnsafeRawBufferPointer? {
        if let call = CallContext.current.pipelinedCall as? SessionPipelinedCall, call.session === self { return call.parent }
        return nil
    }

    // MARK: Jobs and serialization

    /// Queues a timer's run (or a post, or a cancelled timer's last call) for the serialized context.
    func enqueueTask(_ task: SessionTask) {
        enqueue(.task(task))
    }

    private func enqueue(_ job: SessionJob) {
        context.append(job)
        if !isOwner {
            DispatchQueue.global().async { self.serialized {} }
        }
    }

    /// Runs every queued job, including those queued while running them.
    private func drainJobs() {
        context.drain { run($0) }
    }

    private func run(_ job: SessionJob) {
        switch job {
        case .close(let comm, let cause, let message):
            message.withMessage { runClose(comm, cause: cause, message: $0) }
        case .task(let task):
            runTask(task)
        case .writable:
            // Sends a worker answered before it heard of the mark may still be
            // on their way (pipelined calls): let them land, then decide. A
            // queue still above half the mark is not writable yet; the write
            // that drains it queues this again.
            awaitPipelinedCalls()
            let waiting = output.withLock { () -> [PluginLibrary] in
                writableQueued = false
                guard !ending, output.queuedBytes <= limits.outboundHighWaterBytes / 2 else { return [] }
                defer { blocked.removeAll() }
                return blocked
            }
            for library in waiting {
                library.sessionWritable(port, data: sessionData(for: library))
            }
        }
    }

    private func runTask(_ task: SessionTask) {
        guard !task.finished.load(ordering: .acquiring) else { return }
        let closed = task.comm.map { comm in output.withLock { comm.closed } } ?? false
        if closed || task.cancelRequested.load(ordering: .acquiring) {
            tasks.withLock { tasks in tasks.list.removeAll { $0 === task } }
            if task.markFinished() { task.call(closed ? COMMHOST_ECLOSED : COMMHOST_ECANCELED) }
            return
        }
        guard let period = task.period else {
            // A post or a one-shot timer: this run is its last call.
            tasks.withLock { tasks in tasks.list.removeAll { $0 === task } }
            if task.markFinished() { task.call(COMMHOST_OK) }
            return
        }
        task.call(COMMHOST_OK)
        if task.cancelRequested.load(ordering: .acquiring) {
            tasks.withLock { tasks in tasks.list.removeAll { $0 === task } }
            if task.markFinished() { task.call(COMMHOST_ECANCELED) }
        } else if !task.finished.load(ordering: .acquiring) {
            task.arm(afterNanoseconds: period)
        }
    }

    @inline(__always)
    private var isOwner: Bool { context.isOwner }

    /// Runs `body` in the session's serialized context.
    @inline(__always)
    private func serialized<R>(_ body: () -> R) -> R {
        enterSerialContext()
        defer { leaveSerialContext() }
        return body()
    }

    /// Enters the session's serialized context: no frame is handled and no
    /// plugin is called for this session until `leaveSerialContext()`.
    /// Inbound frames wait (in order) meanwhile. Never be inside two
    /// sessions' contexts except entered in ascending `id` order.
    @inline(__always)
    func enterSerialContext() {
        context.enter()
    }

    /// Runs every job queued meanwhile (closes, tasks), then leaves the
    /// serialized context.
    @inline(__always)
    func leaveSerialContext() {
        context.leave { run($0) }
    }

    // MARK: Output

    /// Appends one frame built by `body` unless the session has ended.
    private func emit(_ body: (inout FrameEncoder, inout [UInt8]) -> Void) {
        output.lock()
        defer { output.unlock() }
        guard !output.ended else { return }
        let start = output.pending.count
        body(&encoder, &output.pending)
        afterAppend(from: start)
    }

    /// Appends one frame for `comm` unless it (or the session) is closed;
    /// `closing` marks the comm closed in the same step. A frame `from` a
    /// library (a plugin's send) is refused with `COMMHOST_EAGAIN` while the
    /// outbound queue is above the high-water mark.
    private func emitChecked(comm: Comm, closing: Bool = false, from library: PluginLibrary? = nil,
                             _ body: (inout FrameEncoder, inout [UInt8]) -> Void) -> commhost_status {
        output.lock()
        defer { output.unlock() }
        guard !output.ended, !ending, !comm.closed else { return COMMHOST_ECLOSED }
        if let library, output.queuedBytes >= limits.outboundHighWaterBytes {
            let context = CallContext.current
            guard context.sendAlreadyAnswered else { return refuseForBackpressure(library) }
            // A worker answered this send OK under a pipelined call: it is
            // admitted (the bound admits a frame past the mark), and the
            // library waits for session_writable from now on.
            _ = refuseForBackpressure(library)
            context.admittedPastMark = true
        }
        if closing { comm.closed = true }
        let start = output.pending.count
        body(&encoder, &output.pending)
        afterAppend(from: start, origin: library)
        return COMMHOST_OK
    }

    /// Notes that `library` must hear session_writable; call holding `output`.
    private func refuseForBackpressure(_ library: PluginLibrary) -> commhost_status {
        if !blocked.contains(where: { $0 === library }) { blocked.append(library) }
        return COMMHOST_EAGAIN
    }

    /// Called holding `output` once a writer has written: when libraries
    /// wait for backpressure to end and the queue is down to half the mark,
    /// queues their session_writable.
    private func afterWrite() {
        guard !blocked.isEmpty, !writableQueued, !output.ended, output.queuedBytes <= limits.outboundHighWaterBytes / 2 else { return }
        writableQueued = true
        context.append(.writable)
        DispatchQueue.global().async { self.serialized {} }
    }

    /// Lets threads other than the transport's reader write what they add
    /// the way `handleBatch` does (a worker's reader thread delivering a
    /// pipelined callback's sends: `beginDelivery`), so a reply needs no
    /// wake-up of the writer thread when the client keeps up. Set before
    /// serving; dropped when the session ends.
    public func setDirectWriter(limit: Int, write: @escaping @Sendable (UnsafeRawBufferPointer) -> Int) {
        output.setDirectWriter(limit: limit, write: write)
    }

    /// Opens a delivery for a worker's reader (`PipelinedCall.beginDelivery`):
    /// what is sent until `endDelivery` is written then, together, as at the
    /// end of a run of frames. Nil when the transport writes everything
    /// itself (no direct writer).
    func beginDelivery() -> DeliveryBatch? {
        guard output.beginDirectDelivery() else { return nil }
        CallContext.current.batchDepth += 1
        return self
    }

    func endDelivery() {
        let context = CallContext.current
        context.batchDepth -= 1
        if context.batchDepth == 0 { context.releaseHeldFrames() }
        output.flushToDirectWriter()
    }

    /// Runs `body` (the handling of a run of inbound frames), then sends
    /// what it produced: with `write` on this thread when no other thread is
    /// writing and it is at most `directLimit` bytes, else by waking the
    /// writer thread once. So a reply costs no thread hand-off when the
    /// client keeps up, and at most one wake-up per run when it does not.
    /// `write` must not block: it returns how many bytes it wrote (0 when
    /// the client cannot take more now, -1 on error); the rest goes to the
    /// writer thread, ahead of anything appended since. Calls pipelined to
    /// workers during the run are written together at its end.
    public func handleBatch(directLimit: Int, write: (UnsafeRawBufferPointer) -> Int, _ body: () throws -> Void) rethrows {
        output.holdWakeups()
        let context = CallContext.current
        context.batchDepth += 1
        defer {
            context.batchDepth -= 1
            if context.batchDepth == 0 { context.releaseHeldFrames() }
            output.flushAfterBatch(directLimit: directLimit, write: write)
        }
        try body()
    }

    /// Called holding `output` after each append (of what `pending` holds
    /// from `start` on): traces it (`serve --trace`, in the order issued),
    /// wakes the writer (unless a batch holds wake-ups), and ends the
    /// session when more than the bound
    /// is queued. Plugin sends stop at the high-water mark and the bound
    /// admits any frame on top of it (ManifestLimits), so past the bound the
    /// client is not reading what the host answers it; the reason names a
    /// library only when its own frame (a comm_close or comm_open) crossed.
    @inline(__always)
    private func afterAppend(from start: Int, origin library: PluginLibrary? = nil) {
        if let trace { output.pending.withUnsafeBytes { trace.recordIssued(session: id, frames: UnsafeRawBufferPointer(rebasing: $0[start...])) } }
        if output.queuedBytes > limits.maxOutboundBytes { endForOutboundBound(origin: library) }
        output.appended()
    }

    /// Ends the session because more than the outbound bound is queued; call holding `output`.
    private func endForOutboundBound(origin library: PluginLibrary?) {
        let side = library.map { "library \($0.name) queued a frame past the bound" } ?? "client is not reading"
        let reason = "\(side): \(output.queuedBytes) bytes waiting exceeds limits.max_outbound_bytes (\(limits.maxOutboundBytes))"
        logger.error("ending session: outbound bound exceeded", [("session", .int(id)), ("reason", .string(reason))])
        output.endEarly(reason: reason)
    }

    /// A comm_close the host sends on its own, with `{"reason": reason}` as its data.
    private func emitClose(id commID: String, reason: String) {
        emitClose(id: commID, data: Array("{\"reason\":\(JSONText.string(reason))}".utf8))
    }

    private func emitClose(id commID: String, data: [UInt8]) {
        data.withUnsafeBytes { data in
            emit { encoder, out in
                encoder.commClose(into: &out, commID: commID, data: data,
                                  metadata: UnsafeRawBufferPointer(start: nil, count: 0), buffers: [UnsafeRawBufferPointer](), parent: currentParent)
            }
        }
    }

    private func emitError(_ error: WireError, line: Int?, parent: UnsafeRawBufferPointer?) {
        manager.countError(error.ename)
        logger.warning("bad input; answered with an error frame", [("session", .int(id)), ("line", .int(line ?? 0)), ("ename", .string(error.ename)),
                                                                   ("evalue", .string(error.evalue))])
        emit { encoder, out in encoder.error(into: &out, ename: error.ename, evalue: error.evalue, line: line, parent: parent) }
    }

    private func reportHandlerError(_ error: PluginCallError, comm: Comm, during step: String, line: Int) {
        reportHandlerError(error, comm: comm, during: step, line: line, parent: currentParent)
    }

    private func reportHandlerError(_ error: PluginCallError, comm: Comm, during step: String, line: Int, parent: UnsafeRawBufferPointer?) {
        let text = "\(step) for comm \"\(comm.id)\" (target \(comm.targetName)): handler \"\(comm.handler.name)\" of \(comm.handler.library.name) failed: \(error)"
        logger.error("handler error", [("session", .int(id)), ("comm_id", .string(comm.id)), ("target_name", .string(comm.targetName)),
                                       ("step", .string(step)), ("status", .int(Int(error.status))), ("error", .string(error.text ?? ""))])
        emitError(WireError(ename: "HandlerError", evalue: text), line: line, parent: parent)
    }

    /// Takes everything written so far into `buffer` (replacing its
    /// contents). With `wait`, sleeps until there is output or the session
    /// has ended. Returns false once the session has ended and all its
    /// output has been taken.
    public func takeOutput(into buffer: inout [UInt8], wait: Bool) -> Bool {
        output.takeOutput(into: &buffer, wait: wait)
    }

    /// For a transport's writer thread: waits until there is output and no
    /// other thread is writing, takes it into `buffer` (replacing its
    /// contents) and makes this thread the writer until `finishedWriting()`.
    /// Returns false, taking nothing, once the session has ended and all its
    /// output has been written.
    public func takeOutputToWrite(into buffer: inout [UInt8]) -> Bool {
        output.takeOutputToWrite(into: &buffer)
    }

    /// Ends the writer's turn taken with `takeOutputToWrite`.
    public func finishedWriting() {
        output.finishedWriting()
    }

    /// The stats counters of `targetName` (each comm looks its target's up once).
    func statsTarget(for targetName: String) -> StatsTarget {
        manager.stats.target(targetName)
    }

    /// How many comms are open per target, for stats.
    func openCommsPerTarget() -> [String: Int] {
        comms.withLock { table in
            var counts: [String: Int] = [:]
            for comm in table.values { counts[comm.targetName, default: 0] += 1 }
            return counts
        }
    }

    // MARK: Checks

    /// `OutgoingCheck.checkOutgoing` with this session's limits and the frame being handled.
    @inline(__always)
    private func checkOutgoing(_ message: UnsafePointer<commhost_message>?, commID: String, parent: UnsafeRawBufferPointer?,
                               extra: Int = 0) -> commhost_status {
        let owner = isOwner
        let inbound = owner ? currentInbound : nil
        return outgoing.checkOutgoing(message, commID: commID, parent: parent, extra: extra) {
            isValidatedInbound($0, $1, owner: owner, inbound: inbound)
        }
    }

    /// Whether `(ptr, len)` is exactly the inbound `data` or `metadata` of the
    /// frame this thread is handling: bytes the parser has already validated
    /// as a JSON object, handed back unchanged (an echo, or the widget
    /// protocol's `echo_update`), so they need no second pass. In-process
    /// the very bytes (same address); from a worker, under a pipelined
    /// call, the same bytes as that call's frame had.
    /// `owner` says whether this thread is inside the serialized context;
    /// `inbound` is then `currentInbound`.
    @inline(__always)
    private func isValidatedInbound(_ ptr: UnsafePointer<CChar>, _ len: Int, owner: Bool, inbound: InboundBytes?) -> Bool {
        guard owner else {
            // A worker's reader running a send under a pipelined call: the
            // bytes are the worker's copy, compared with the frame's.
            guard let call = CallContext.current.pipelinedCall as? SessionPipelinedCall, call.session === self else { return false }
            return call.isInbound(UnsafeRawBufferPointer(start: ptr, count: len))
        }
        guard let inbound else { return false }
        let address = UnsafeRawPointer(ptr)
        return (address == inbound.data.baseAddress && len == inbound.data.count)
            || (address == inbound.metadata.baseAddress && len == inbound.metadata.count)
    }

    /// Whether `bytes` are the very `data` of the frame this thread is
    /// handling and that frame holds no line break (an echo), so the encoder
    /// need not look for one. `inbound` is `currentInbound` when this thread
    /// is inside the serialized context, else nil.
    @inline(__always)
    private func isOneLineInbound(_ bytes: UnsafeRawBufferPointer, inbound: InboundBytes?) -> Bool {
        guard !bytes.isEmpty, let inbound, inbound.oneLine else { return false }
        return bytes.baseAddress == inbound.data.baseAddress && bytes.count == inbound.data.count
    }

    /// Calls `body` with a checked message's data, metadata and buffers.
    /// Inlined: as a call, the session, comm and library its caller's
    /// closure captures were retained and released around it on every send.
    @inline(__always)
    private func withOutgoing(_ message: UnsafePointer<commhost_message>?,
                              _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, [UnsafeRawBufferPointer]) -> commhost_status) -> commhost_status {
        OutgoingCheck.withOutgoing(message, body)
    }

    /// Comm ids generated so far, for repeatable ids.
    private let generatedCommIDs = Atomic<Int>(0)

    /// A comm id for a plugin's open that named none: `comm-N` with
    /// repeatable ids, else 32 random hex digits.
    private func generatedCommID() -> String {
        guard manager.repeatableIDs else { return Self.newCommID() }
        return "comm-\(generatedCommIDs.add(1, ordering: .relaxed).newValue)"
    }

    /// 32 random lowercase hex digits, like the comm package's uuid4().hex.
    static func newCommID() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef".utf8)
        var bytes = [UInt8](repeating: 0, count: 32)
        for half in 0..<2 {
            var bits = generator.next() as UInt64
            for i in 0..<16 {
                bytes[half * 16 + i] = hex[Int(bits & 15)]
                bits >>= 4
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A worker's reader delivers a session's sends in batches (`beginDelivery`).
extension Session: DeliveryBatch {}

extension Session: OutboundQueueOwner {
    func outboundQueueWrote() { afterWrite() }
}

