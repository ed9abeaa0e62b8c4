import CommPluginAPI

/// The `commhost_host` table a plugin gets in the worker: the same functions
/// as in-process, each forwarded to the host as a `hostCall` (the calling
/// thread waits for its `hostReply`) or answered here from what the host
/// already told the worker (names, session data, error text). One table per
/// worker (one library); its `host_data` is the `WorkerServer`.
enum WorkerHostTable {
    /// The table for `server`, made field by field from a zeroed struct and
    /// never freed (the plugin may keep it until the process ends).
    static func make(for owner: WorkerServer) -> UnsafePointer<commhost_host> {
        var host = commhost_host()
        host.struct_size = MemoryLayout<commhost_host>.size
        host.abi_major = UInt16(COMMHOST_ABI_MAJOR)
        host.abi_minor = UInt16(COMMHOST_ABI_MINOR)
        host.reserved = 0
        host.host_data = Unmanaged.passRetained(owner).toOpaque()
        host.get_extension = { _, _ in nil }
        host.log = { host, level, message in
            guard let server = WorkerHostTable.serving(host) else { return }
            server.hostCalls.notify(.log(level: level, text: HostAPI.string(message) ?? "<log text is not valid UTF-8>"))
        }
        host.set_error = { _, message in
            WorkerCallContext.current.errorText = HostAPI.string(message) ?? "<error text is not valid UTF-8>"
        }
        host.send = { host, comm, message in
            guard let server = WorkerHostTable.serving(host) else { return COMMHOST_EINVAL }
            guard WorkerHostTable.isWellFormed(message) else { return COMMHOST_EINVAL }
            let token = WorkerServer.token(comm)
            if WorkerCallContext.current.pipelined, let status = WorkerHostTable.answerSend(server, token, message) { return status }
            return WorkerHostTable.forward(server, .send(comm: token, message: WorkerHostTable.copy(message))).status
        }
        host.close = { host, comm, message in
            guard let server = WorkerHostTable.serving(host) else { return COMMHOST_EINVAL }
            guard case .valid(let payload) = WorkerHostTable.outgoing(message) else { return COMMHOST_EINVAL }
            let token = WorkerServer.token(comm)
            let status = WorkerHostTable.forward(server, .close(comm: token, message: payload)).status
            if status == COMMHOST_OK { server.handles.commClosedByPlugin(token) }
            return status
        }
        host.open = { host, session, handlerName, targetName, commID, message, instance, outComm in
            guard let server = WorkerHostTable.serving(host) else { return COMMHOST_EINVAL }
            guard let handler = HostAPI.string(handlerName), let target = HostAPI.string(targetName), let id = HostAPI.string(commID),
                  case .valid(let payload) = WorkerHostTable.outgoing(message) else { return COMMHOST_EINVAL }
            let token = WorkerServer.token(session)
            let reply = WorkerHostTable.forward(server, .open(session: token, handler: handler, target: target, commID: id, message: payload,
                                              instance: WorkerServer.value(instance), wantsReference: outComm != nil))
            guard reply.status == COMMHOST_OK else { return reply.status }
            server.handles.commOpened(token: reply.value, id: reply.text, target: target, session: token, referenced: outComm != nil)
            outComm?.pointee = WorkerServer.handle(reply.value)
            return COMMHOST_OK
        }
        host.comm_id = { host, comm in
            WorkerHostTable.commNames(host, comm, "comm_id")?.firstSlice ?? commhost_str(ptr: nil, len: 0)
        }
        host.target_name = { host, comm in
            WorkerHostTable.commNames(host, comm, "target_name")?.secondSlice ?? commhost_str(ptr: nil, len: 0)
        }
        host.comm_session = { host, comm in
            guard let server = WorkerHostTable.serving(host) else { return nil }
            guard let session = server.handles.commSession(WorkerServer.token(comm)) else {
                WorkerHostTable.badHandle(server, "comm_session", "comm", comm)
                return nil
            }
            return WorkerServer.handle(session)
        }
        host.retain_comm = { host, comm in
            guard let server = WorkerHostTable.serving(host) else { return COMMHOST_EINVAL }
            let token = WorkerServer.token(comm)
            let status = WorkerHostTable.forward(server, .retainComm(token)).status
            if status == COMMHOST_OK { server.handles.commReferenceChanged(token, by: 1) }
            return status
        }
        host.release_comm = { host, comm in
            guard let server = WorkerHostTable.serving(host) else { return COMMHOST_EINVAL }
            let token = WorkerServer.token(comm)
            let status = WorkerHostTable.forward(server, .releaseComm(token)).status
            if status == COMMHOST_OK { server.handles.commReferenceChanged(token, by: -1) }
            return status
        }
        host.session_id = { host, session in
            guard let server = WorkerHostTable.serving(host) else { return commhost_str(ptr: nil, len: 0) }
            guard let names = server.handles.sessionNames(WorkerServer.token(session)) else {
                WorkerHostTable.badHandle(server, "session_id", "session", session)
                return commhost_str(ptr: nil, len: 0)
            }
            return names.firstSlice
        }
        host.session_data = { host, session in
            guard let server = WorkerHostTable.serving(host) else { return nil }
            return server.handles.sessionData(WorkerServer.token(session))
        }
        host.retain_session = { host, session in
            guard let server = WorkerHostTable.serving(host) else { return COMMHOST_EINVAL }
            let token = WorkerServer.token(session)
            let status = WorkerHostTable.forward(server, .retainSession(token)).status
            if status == COMMHOST_OK { server.handles.sessionReferenceChanged(token, by: 1) }
            return status
        }
        host.release_session = { host, session in
            guard let server = WorkerHostTable.serving(host) else { return COMMHOST_EINVAL }
            let token = WorkerServer.token(session)
            let status = WorkerHostTable.forward(server, .releaseSession(token)).status
            if status == COMMHOST_OK { server.handles.sessionReferenceChanged(token, by: -1) }
            return status
        }
        host.post = { host, session, comm, function, data in
            WorkerHostTable.schedule(host, session, comm, delay: 0, period: nil, function, data).status
        }
        host.timer_start = { host, session, comm, delay, period, function, data, outTimer in
            let (status, timer) = WorkerHostTable.schedule(host, session, comm, delay: delay, period: period, function, data)
            if status == COMMHOST_OK { outTimer?.pointee = timer }
            return status
        }
        host.timer_cancel = { host, timer in
            guard let server = WorkerHostTable.serving(host) else { return COMMHOST_EINVAL }
            return WorkerHostTable.forward(server, .timerCancel(timer)).status
        }
        let table = ABIStruct.permanentCopy(of: &host, size: MemoryLayout<commhost_host>.size, alignment: MemoryLayout<commhost_host>.alignment)
        // Reachable until the worker exits: the plugin keeps the pointer, and
        // the table keeps its server (and what that holds) alive.
        tables.withLock { $0.append(table) }
        return table
    }

    /// Every table made in this process.
    private static let tables = Locked<[UnsafePointer<commhost_host>]>([])

    @inline(__always)
    private static func serving(_ host: UnsafePointer<commhost_host>?) -> WorkerServer? {
        guard let data = host?.pointee.host_data else { return nil }
        return Unmanaged<WorkerServer>.fromOpaque(data).takeUnretainedValue()
    }

    /// Sends `call` to the host and waits for its answer. A failure's text
    /// (the host's reason for `COMMHOST_EJSON`, say) becomes this thread's
    /// error text, as the in-process host sets it for the running callback.
    private static func forward(_ server: WorkerServer, _ call: WorkerHostCall) -> WorkerHostCalls.Reply {
        let reply = server.hostCalls.call(call)
        if reply.status != COMMHOST_OK && !reply.text.isEmpty { WorkerCallContext.current.errorText = reply.text }
        return reply
    }

    /// A send under a pipelined `message` request, answered here so the
    /// callback costs no round trip: ECLOSED for a comm the worker knows is
    /// closed, EAGAIN while the host says the session is past its
    /// high-water mark, EJSON (with the reason) for data or metadata that is
    /// not a JSON object; else OK, and the send goes to the host with no
    /// reply owed. The host checks it again (a refusal there is logged and
    /// the frame dropped: a close the worker had not heard of yet, a frame
    /// past max_frame_bytes). Nil for a comm the worker does not know: only
    /// the host can answer, so the send is forwarded and waited for.
    private static func answerSend(_ server: WorkerServer, _ token: UInt64, _ message: UnsafePointer<commhost_message>?) -> commhost_status? {
        switch server.handles.sendCheck(token) {
        case .unknown: return nil
        case .closed: return COMMHOST_ECLOSED
        case .blocked: return COMMHOST_EAGAIN
        case .open: break
        }
        // Borrowed: encoded into the held frames before send returns.
        let payload = message.map(PayloadView.init)
        if let payload {
            let context = WorkerCallContext.current
            do {
                try validate(payload.data, unless: context.requestData)
                try validate(payload.metadata, unless: context.requestMetadata)
            } catch {
                context.errorText = "\(error)"
                return COMMHOST_EJSON
            }
        }
        server.hostCalls.notifyPipelinedSend(comm: token, payload: payload)
        return COMMHOST_OK
    }

    /// Validates `json` as a JSON object, unless it is empty (`{}`) or the
    /// very bytes of `request` (the message being handled, which the host
    /// validated when it arrived).
    private static func validate(_ json: UnsafeRawBufferPointer, unless request: UnsafeRawBufferPointer) throws(WireError) {
        guard !json.isEmpty, json.baseAddress != request.baseAddress || json.count != request.count else { return }
        try JSONValidator.validateObject(json, maxDepth: WireLimits().maxDepth)
    }

    /// A message the plugin hands the host: absent (NULL), or copied.
    private enum Outgoing {
        case valid(WorkerPayload?)
        case invalid
    }

    /// Copies the plugin's message, with the checks the host makes on
    /// pointers (which cannot cross to it): at least the ABI 1.0 size, no
    /// NULL pointer with a non-zero length. The host checks the rest (JSON,
    /// limits) on the bytes.
    private static func outgoing(_ message: UnsafePointer<commhost_message>?) -> Outgoing {
        guard isWellFormed(message) else { return .invalid }
        return .valid(copy(message))
    }

    /// Copies a message `isWellFormed` accepted.
    private static func copy(_ message: UnsafePointer<commhost_message>?) -> WorkerPayload? {
        guard let message else { return nil }
        let owned = OwnedMessage(copying: message)
        return WorkerPayload(data: owned.data, metadata: owned.metadata, buffers: owned.buffers)
    }

    /// The checks the host makes on a message's pointers, which cannot
    /// cross to it: at least the ABI 1.0 size, no NULL pointer with a
    /// non-zero length. NULL (no message) is well formed.
    private static func isWellFormed(_ message: UnsafePointer<commhost_message>?) -> Bool {
        guard let message else { return true }
        let m = ABIStruct.message(message)
        guard m.struct_size >= OutgoingCheck.messageSize1_0 else { return false }
        guard m.data.len == 0 || m.data.ptr != nil, m.metadata.len == 0 || m.metadata.ptr != nil else { return false }
        if m.buffer_count > 0 {
            guard let list = m.buffers else { return false }
            for i in 0..<m.buffer_count where list[i].len > 0 && list[i].ptr == nil { return false }
        }
        return true
    }

    /// post and timer_start: registers the task, then asks the host to schedule it.
    private static func schedule(_ host: UnsafePointer<commhost_host>?, _ session: OpaquePointer?, _ comm: OpaquePointer?,
                                 delay: UInt64, period: UInt64?, _ function: commhost_task_fn?,
                                 _ data: UnsafeMutableRawPointer?) -> (status: commhost_status, timer: UInt64) {
        guard let server = serving(host) else { return (COMMHOST_EINVAL, 0) }
        guard let function, session != nil || comm != nil else { return (COMMHOST_EINVAL, 0) }
        let task = server.tasks.register(WorkerTasks.Entry(function: function, data: data, repeats: (period ?? 0) != 0))
        let reply = forward(server, .schedule(session: WorkerServer.token(session), comm: WorkerServer.token(comm),
                                              delayMilliseconds: delay, periodMilliseconds: period, task: task))
        guard reply.status == COMMHOST_OK else {
            server.tasks.forget(task)
            return (reply.status, 0)
        }
        return (COMMHOST_OK, reply.value)
    }

    private static func commNames(_ host: UnsafePointer<commhost_host>?, _ comm: OpaquePointer?, _ function: String) -> HandleNames? {
        guard let server = serving(host) else { return nil }
        guard let names = server.handles.commNames(WorkerServer.token(comm)) else {
            badHandle(server, function, "comm", comm)
            return nil
        }
        return names
    }

    /// Logs a call with a handle the worker does not know, as the host logs one it does not hold.
    private static func badHandle(_ server: WorkerServer, _ function: String, _ kind: String, _ handle: OpaquePointer?) {
        let token = WorkerServer.token(handle)
        server.logger.error("plugin called a host function with a bad handle; refused",
                            [("plugin", .string(server.library.name)),
                             ("call", .string("\(function) with a \(kind) handle it does not hold (\(token == 0 ? "NULL" : "0x" + String(token, radix: 16)))"))])
    }
}
