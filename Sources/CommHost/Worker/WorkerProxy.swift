import CommPluginAPI
import Glibc

/// The host's stand-in for a library served by a `commhost worker`: a
/// descriptor of the same shape as the worker's library (its names, flags
/// and which callbacks exist), whose callbacks forward each call to the
/// worker and wait for its reply, and which runs the host functions the
/// plugin calls over there through this library's own host table. The rest
/// of the host cannot tell it from a library loaded in-process: sessions,
/// serialization, handles, timers and hand-off all go through the same
/// `PluginLibrary` and `Handler` paths.
final class WorkerProxy: @unchecked Sendable {
    // @unchecked: `process`, `descriptor` and `handlerNames` are immutable;
    // `host` is written once by init, before any other call.

    let process: WorkerProcess
    let remote: WorkerDescriptor
    /// The descriptor the host loads; never freed (its callbacks may be
    /// referenced by tables until the process exits).
    private(set) var descriptor: UnsafePointer<commhost_plugin>!
    /// This library's host table, from init.
    fileprivate var host: UnsafePointer<commhost_host>?

    init(process: WorkerProcess, remote: WorkerDescriptor) {
        self.process = process
        self.remote = remote
        descriptor = buildDescriptor()
        process.libraryName = remote.name
        process.executeHostCall = { [unowned self] call in self.execute(call) }
        process.executePipelinedSend = { [unowned self] comm, payload in self.executePipelinedSend(comm: comm, payload) }
    }

    // MARK: Requests

    /// Sends one callback to the worker and waits. Returns nil (after
    /// setting the error text) when the worker died or was killed.
    fileprivate func call(_ message: WorkerMessage, what: WorkerCallback) -> (status: commhost_status, value: UInt64, bytes: [UInt8])? {
        guard let reply = process.request(message, what: what, execute: { self.execute($0) }) else {
            setError("handler crashed: the worker serving library \(remote.name) ended (\(process.deathReason ?? "it died"))")
            return nil
        }
        guard case .reply(let status, let error, let value, let bytes) = reply else { return nil }
        if status != COMMHOST_OK, let error { setError(error) }
        return (status, value, bytes)
    }

    /// Sends a comm_msg request without waiting (`WorkerProcess.pipeline`);
    /// `call` ends when the worker answers. EFAIL (with the error text) when
    /// the worker is gone.
    fileprivate func pipeline(_ message: some WorkerFrame, what: WorkerCallback, call: PipelinedCall) -> commhost_status {
        guard process.pipeline(message, what: what, call: call) else {
            setError("handler crashed: the worker serving library \(remote.name) ended (\(process.deathReason ?? "it died"))")
            return COMMHOST_EFAIL
        }
        return COMMHOST_OK
    }

    private func setError(_ text: String) {
        guard let host, let setError = host.pointee.set_error else { return }
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { raw in
            setError(host, commhost_str(ptr: raw.baseAddress?.assumingMemoryBound(to: CChar.self), len: raw.count))
        }
    }

    /// What the worker needs to know of a comm it has not seen yet.
    fileprivate func describe(_ comm: OpaquePointer?) -> WorkerComm {
        let token = Self.token(comm)
        guard let host else { return WorkerComm(token: token, id: "", targetName: "", session: 0, sessionID: "") }
        let session = host.pointee.comm_session(host, comm)
        return WorkerComm(token: token, id: Self.string(host.pointee.comm_id(host, comm)),
                          targetName: Self.string(host.pointee.target_name(host, comm)),
                          session: Self.token(session), sessionID: Self.string(host.pointee.session_id(host, session)))
    }

    // MARK: Host calls from the worker

    /// Runs one host function the plugin called in the worker, through this
    /// library's table, and builds the answer.
    private func execute(_ call: WorkerHostCall) -> WorkerMessage {
        guard let host else { return .hostReply(status: COMMHOST_ECLOSED, value: 0, text: "") }
        let api = host.pointee
        func reply(_ status: commhost_status, _ value: UInt64 = 0, _ text: String = "") -> WorkerMessage {
            .hostReply(status: status, value: value, text: text)
        }
        switch call {
        case .log(let level, let text):
            Self.withStr(text) { api.log(host, level, $0) }
            return reply(COMMHOST_OK)
        case .send(let comm, let message):
            return reply(Self.withMessage(message) { api.send(host, Self.handle(comm), $0) })
        case .pipelinedSend(let comm, let message):
            if let message {
                OwnedMessage(data: message.data, metadata: message.metadata, buffers: message.buffers).withMessage {
                    executePipelinedSend(comm: comm, PayloadView($0))
                }
            } else {
                executePipelinedSend(comm: comm, nil)
            }
            return reply(COMMHOST_OK)
        case .close(let comm, let message):
            return reply(Self.withMessage(message) { api.close(host, Self.handle(comm), $0) })
        case .open(let session, let handler, let target, let commID, let message, let instance, let wantsReference):
            var opened: OpaquePointer?
            let status = Self.withStr(handler) { handler in
                Self.withStr(target) { target in
                    Self.withStr(commID) { id in
                        Self.withMessage(message) { message in
                            api.open(host, Self.handle(session), handler, target, id, message,
                                     UnsafeMutableRawPointer(bitPattern: UInt(instance)), &opened)
                        }
                    }
                }
            }
            guard status == COMMHOST_OK, let opened else { return reply(status) }
            let name = Self.string(api.comm_id(host, opened))
            if !wantsReference { _ = api.release_comm(host, opened) }
            return reply(COMMHOST_OK, Self.token(opened), name)
        case .retainComm(let comm): return reply(api.retain_comm(host, Self.handle(comm)))
        case .releaseComm(let comm): return reply(api.release_comm(host, Self.handle(comm)))
        case .retainSession(let session): return reply(api.retain_session(host, Self.handle(session)))
        case .releaseSession(let session): return reply(api.release_session(host, Self.handle(session)))
        case .schedule(let session, let comm, let delay, let period, let task):
            let box = Unmanaged.passRetained(TaskBox(proxy: self, task: task, repeating: (period ?? 0) != 0))
            var timer: commhost_timer = 0
            let status: commhost_status
            if let period {
                status = api.timer_start(host, Self.handle(session), Self.handle(comm), delay, period, proxyTask, box.toOpaque(), &timer)
            } else {
                status = api.post(host, Self.handle(session), Self.handle(comm), proxyTask, box.toOpaque())
            }
            if status != COMMHOST_OK { box.release() }
            return reply(status, timer)
        case .timerCancel(let timer):
            return reply(api.timer_cancel(host, timer))
        }
    }

    /// Runs a `send` the worker answered OK already (`pipelinedSend`):
    /// the session admits it past the high-water mark, and then the worker
    /// must stop saying OK. Nothing is replied.
    private func executePipelinedSend(comm: UInt64, _ payload: PayloadView?) {
        guard let host else { return }
        let api = host.pointee
        let context = CallContext.current
        context.sendAlreadyAnswered = true
        context.errorText = nil
        let status = payload.map { $0.withMessage { api.send(host, Self.handle(comm), $0) } } ?? api.send(host, Self.handle(comm), nil)
        context.sendAlreadyAnswered = false
        if context.admittedPastMark {
            context.admittedPastMark = false
            let session = api.comm_session(host, Self.handle(comm))
            try? process.channel.send(WorkerMessage.sessionBlocked(session: Self.token(session)), id: 0)
        }
        if status != COMMHOST_OK {
            // ECLOSED: the comm closed on the host's side while the worker
            // had not heard yet, as a send racing a close does in-process.
            let logger = HostAPI.logger.withLock { $0 }
            logger.log(status == COMMHOST_ECLOSED ? .debug : .warning,
                       "a send the worker answered under a pipelined comm_msg was refused by the host; dropped",
                       [("plugin", .string(remote.name)), ("status", .string(PluginCallError.name(of: status))),
                        ("error", .string(context.errorText ?? ""))])
        }
    }

    // MARK: The descriptor

    private func buildDescriptor() -> UnsafePointer<commhost_plugin> {
        let list = UnsafeMutablePointer<UnsafePointer<commhost_handler>?>.allocate(capacity: max(remote.handlers.count, 1))
        for (index, remoteHandler) in remote.handlers.enumerated() {
            var handler = commhost_handler()
            handler.struct_size = MemoryLayout<commhost_handler>.size
            handler.name = UnsafePointer(strdup(remoteHandler.name))
            handler.handler_data = Unmanaged.passRetained(HandlerBox(proxy: self, index: UInt32(index))).toOpaque()
            handler.open = proxyOpen
            if remoteHandler.callbacks & WorkerHandler.hasMessage != 0 { handler.message = proxyMessage }
            // Always: the worker frees what it keeps for a comm (its names) when
            // told the comm closed, and skips the plugin's NULL close itself.
            handler.close = proxyClose
            if remoteHandler.callbacks & WorkerHandler.hasSnapshot != 0 { handler.snapshot = proxySnapshot }
            if remoteHandler.callbacks & WorkerHandler.hasRestore != 0 { handler.restore = proxyRestore }
            (list + index).initialize(to: ABIStruct.permanentCopy(of: &handler, size: MemoryLayout<commhost_handler>.size,
                                                                  alignment: MemoryLayout<commhost_handler>.alignment))
        }
        var plugin = commhost_plugin()
        plugin.struct_size = MemoryLayout<commhost_plugin>.size
        plugin.abi_major = remote.abiMajor
        plugin.abi_minor = remote.abiMinor
        plugin.flags = remote.flags
        plugin.name = UnsafePointer(strdup(remote.name))
        plugin.version = UnsafePointer(strdup(remote.version))
        plugin.`init` = proxyInit
        plugin.`deinit` = proxyDeinit
        plugin.handlers = UnsafePointer(list)
        plugin.handler_count = remote.handlers.count
        let callbacks = remote.libraryCallbacks
        if callbacks & WorkerDescriptor.hasSessionStart != 0 { plugin.session_start = proxySessionStart }
        if callbacks & WorkerDescriptor.hasSessionEnd != 0 { plugin.session_end = proxySessionEnd }
        // Always: a session_writable request also tells the worker that sends
        // in the session may go on (after a sessionBlocked); it skips the
        // plugin's NULL callback itself.
        plugin.session_writable = proxySessionWritable
        return ABIStruct.permanentCopy(of: &plugin, size: MemoryLayout<commhost_plugin>.size, alignment: MemoryLayout<commhost_plugin>.alignment)
    }

    // MARK: Helpers

    fileprivate static func token(_ handle: OpaquePointer?) -> UInt64 {
        UInt64(UInt(bitPattern: handle.map { Int(bitPattern: UnsafeRawPointer($0)) } ?? 0))
    }

    fileprivate static func handle(_ token: UInt64) -> OpaquePointer? {
        OpaquePointer(bitPattern: UInt(token))
    }

    fileprivate static func string(_ slice: commhost_str) -> String {
        HostAPI.string(slice) ?? ""
    }

    fileprivate static func withStr<R>(_ text: String, _ body: (commhost_str) -> R) -> R {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { raw in
            body(commhost_str(ptr: raw.baseAddress?.assumingMemoryBound(to: CChar.self), len: raw.count))
        }
    }

    fileprivate static func withMessage<R>(_ payload: WorkerPayload?, _ body: (UnsafePointer<commhost_message>?) -> R) -> R {
        guard let payload else { return body(nil) }
        return OwnedMessage(data: payload.data, metadata: payload.metadata, buffers: payload.buffers).withMessage { body($0) }
    }

    fileprivate static func payload(_ message: UnsafePointer<commhost_message>?) -> WorkerPayload {
        let owned = OwnedMessage(copying: message)
        return WorkerPayload(data: owned.data, metadata: owned.metadata, buffers: owned.buffers)
    }
}

/// A handler's context: which proxy and which of its handlers.
private final class HandlerBox {
    unowned let proxy: WorkerProxy
    let index: UInt32
    init(proxy: WorkerProxy, index: UInt32) {
        self.proxy = proxy
        self.index = index
    }
}

/// A task the plugin scheduled in the worker, as the host runs it.
private final class TaskBox {
    let proxy: WorkerProxy
    let task: UInt64
    let repeating: Bool
    init(proxy: WorkerProxy, task: UInt64, repeating: Bool) {
        self.proxy = proxy
        self.task = task
        self.repeating = repeating
    }
}

private func box(_ handler: UnsafePointer<commhost_handler>?) -> HandlerBox {
    Unmanaged<HandlerBox>.fromOpaque(handler!.pointee.handler_data!).takeUnretainedValue()
}

private func proxy(_ library: UnsafeMutableRawPointer?) -> WorkerProxy {
    Unmanaged<WorkerProxy>.fromOpaque(library!).takeUnretainedValue()
}

private func instanceValue(_ instance: UnsafeMutableRawPointer?) -> UInt64 {
    UInt64(UInt(bitPattern: instance))
}

private let proxyTask: commhost_task_fn = { data, status in
    let task = Unmanaged<TaskBox>.fromOpaque(data!)
    let box = task.takeUnretainedValue()
    _ = box.proxy.call(.task(task: box.task, status: status), what: WorkerCallback(name: "task"))
    if status != COMMHOST_OK || !box.repeating { task.release() }
}

private let proxyInit: @convention(c) (UnsafePointer<commhost_host>?, commhost_str, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status = {
    host, config, outLibrary in
    guard let library = HostAPI.library(host), let worker = library.worker as? WorkerProxy, let outLibrary else { return COMMHOST_EINVAL }
    worker.host = host
    outLibrary.pointee = Unmanaged.passUnretained(worker).toOpaque()
    let bytes = config.ptr.map { Array(UnsafeRawBufferPointer(start: $0, count: config.len)) } ?? []
    return worker.call(.initialize(config: bytes), what: WorkerCallback(name: "init"))?.status ?? COMMHOST_EFAIL
}

private let proxyDeinit: @convention(c) (UnsafeMutableRawPointer?) -> Void = { library in
    let worker = proxy(library)
    _ = worker.call(.deinitialize, what: WorkerCallback(name: "deinit"))
    worker.process.kill(because: "its library was retired")
}

private let proxySessionStart: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, commhost_session_cause,
                                               UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status = {
    library, session, cause, _ in
    let worker = proxy(library)
    let id = worker.host.map { WorkerProxy.string($0.pointee.session_id($0, session)) } ?? ""
    return worker.call(.sessionStart(session: WorkerProxy.token(session), sessionID: id, cause: cause), what: WorkerCallback(name: "session_start"))?.status
        ?? COMMHOST_EFAIL
}

private let proxySessionEnd: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutableRawPointer?, commhost_session_cause) -> Void = {
    library, session, _, cause in
    _ = proxy(library).call(.sessionEnd(session: WorkerProxy.token(session), cause: cause), what: WorkerCallback(name: "session_end"))
}

private let proxySessionWritable: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutableRawPointer?) -> Void = {
    library, session, _ in
    _ = proxy(library).call(.sessionWritable(session: WorkerProxy.token(session)), what: WorkerCallback(name: "session_writable"))
}

private let proxyOpen: @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                       UnsafePointer<commhost_message>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status = {
    handler, _, comm, message, outInstance in
    let box = box(handler)
    let described = box.proxy.describe(comm)
    guard let reply = box.proxy.call(.open(handler: box.index, comm: described, message: WorkerProxy.payload(message)),
                                     what: WorkerCallback(name: "open", comm: described.token)) else { return COMMHOST_EFAIL }
    if reply.status == COMMHOST_OK { outInstance?.pointee = UnsafeMutableRawPointer(bitPattern: UInt(reply.value)) }
    return reply.status
}

private let proxyMessage: @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                          UnsafePointer<commhost_message>?) -> commhost_status = {
    handler, instance, comm, message in
    let box = box(handler)
    let what = WorkerCallback(name: "comm_msg", comm: WorkerProxy.token(comm))
    // The session offers a pipelined call when it can go on without the
    // outcome (it reports a failure when the reply comes). Its request is
    // encoded from the host's message as it lies: no copy first.
    let context = CallContext.current
    if let call = context.pipelineOffer {
        context.pipelineOffer = nil
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let request = MessageRequestFrame(handler: box.index, instance: instanceValue(instance), comm: WorkerProxy.token(comm),
                                          payload: message.map(PayloadView.init) ?? PayloadView(data: empty, metadata: empty))
        return box.proxy.pipeline(request, what: what, call: call)
    }
    let request = WorkerMessage.message(handler: box.index, instance: instanceValue(instance), comm: WorkerProxy.token(comm),
                                        message: WorkerProxy.payload(message))
    return box.proxy.call(request, what: what)?.status ?? COMMHOST_EFAIL
}

private let proxyClose: @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                        UnsafePointer<commhost_message>?, commhost_close_cause) -> Void = {
    handler, instance, comm, message, cause in
    let box = box(handler)
    _ = box.proxy.call(.close(handler: box.index, instance: instanceValue(instance), comm: WorkerProxy.token(comm),
                              message: WorkerProxy.payload(message), cause: cause),
                       what: WorkerCallback(name: "close", comm: WorkerProxy.token(comm)))
}

private let proxySnapshot: @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                           UnsafePointer<commhost_writer>?) -> commhost_status = {
    handler, instance, comm, writer in
    let box = box(handler)
    guard let reply = box.proxy.call(.snapshot(handler: box.index, instance: instanceValue(instance), comm: WorkerProxy.token(comm)),
                                     what: WorkerCallback(name: "snapshot", comm: WorkerProxy.token(comm))) else { return COMMHOST_EFAIL }
    guard reply.status == COMMHOST_OK else { return reply.status }
    guard let writer, let write = writer.pointee.write else { return COMMHOST_EINVAL }
    return reply.bytes.withUnsafeBufferPointer { write(writer, $0.baseAddress, $0.count) }
}

private let proxyRestore: @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?, commhost_str,
                                          commhost_bytes, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status = {
    handler, _, comm, fromVersion, state, outInstance in
    let box = box(handler)
    let bytes = state.ptr.map { Array(UnsafeBufferPointer(start: $0, count: state.len)) } ?? []
    guard let reply = box.proxy.call(.restore(handler: box.index, comm: box.proxy.describe(comm), fromVersion: WorkerProxy.string(fromVersion),
                                              state: bytes),
                                     what: WorkerCallback(name: "restore", comm: WorkerProxy.token(comm))) else { return COMMHOST_EFAIL }
    if reply.status == COMMHOST_OK { outInstance?.pointee = UnsafeMutableRawPointer(bitPattern: UInt(reply.value)) }
    return reply.status
}
