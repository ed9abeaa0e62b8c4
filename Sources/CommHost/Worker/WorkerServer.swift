import CommPluginAPI
import Dispatch

/// The worker's side of the protocol (`WorkerMessage`): one reader (the
/// thread calling `serve`) takes every frame from the host; each request
/// runs the plugin callback it names on a thread of its own from the global
/// pool, so a callback that calls a host function and waits for its
/// `hostReply` never stops the reader that will deliver it. Pipelined
/// `message` requests run one at a time, in the order they came, on one
/// serial queue. The host serializes callbacks as it would in-process (and
/// sends no other request while a `message` is unanswered), so plugin calls
/// take no lock here; the worker's own tables (host calls in flight, tasks,
/// handle names) are locked.
final class WorkerServer: @unchecked Sendable {
    // @unchecked: `hostTable` is written once, in init; everything else is
    // immutable or guards itself.

    let channel: WorkerChannel
    let library: WorkerLibrary
    let hostCalls: WorkerHostCalls
    let handles = WorkerHandles()
    let tasks = WorkerTasks()
    let logger: Logger
    /// The forwarding table given to the plugin's init (made once, never freed).
    private(set) var hostTable: UnsafePointer<commhost_host>!
    /// Pipelined `message` requests not yet run, in the order they came
    /// (each frame body after its `UInt32` length); one thread (started on
    /// first use) runs them. Guarded by `pipeline`.
    private let pipeline = ConditionLock()
    private var pending = FrameBuffer(capacity: 64 << 10)
    private var pipelineStarted = false

    init(channel: WorkerChannel, library: WorkerLibrary, logger: Logger) {
        self.channel = channel
        self.library = library
        self.logger = logger
        hostCalls = WorkerHostCalls(channel: channel)
        hostTable = WorkerHostTable.make(for: self)
    }

    /// Serves the host's requests until the deinitialize request has been
    /// answered or the host closes the channel (0), or the host sends what
    /// it must not (1, logged).
    func serve() -> Int32 {
        defer { hostCalls.closeAll() }
        while true {
            let body: UnsafeRawBufferPointer
            do {
                body = try channel.receiveBody()
            } catch .closed {
                return 0
            } catch {
                return unreadable(error.description)
            }
            if body.first == WorkerCodec.Kind.message.rawValue {
                // Checked here, decoded again (borrowing the queue's bytes) by the pipeline thread.
                do {
                    _ = try WorkerCodec.decodeMessageRequest(body)
                } catch {
                    return unreadable("malformed frame: \(error.description)")
                }
                do throws(Errno) {
                    try enqueuePipelined(body)
                } catch {
                    logger.error("worker stops: cannot start its pipeline thread", [("library", .string(library.name)),
                                                                                    ("error", .string("\(error)"))])
                    return 1
                }
                continue
            }
            let id: UInt64, message: WorkerMessage
            do {
                (id, message) = try WorkerCodec.decode(body)
            } catch {
                return unreadable("malformed frame: \(error.description)")
            }
            switch message {
            case .hostReply(let status, let value, let text):
                hostCalls.deliver(id: id, WorkerHostCalls.Reply(status: status, value: value, text: text))
            case .hello, .refusal, .reply, .hostCall:
                logger.error("worker stops: the host sent a frame only a worker sends", [("library", .string(library.name)),
                                                                                         ("frame", .string("\(message)"))])
                return 1
            case .sessionBlocked(let session):
                handles.setSessionBlocked(session, true)
            case .message:
                // Taken above, before decoding.
                return unreadable("a message request reached the decoder")
            default:
                DispatchQueue.global().async { self.serveRequest(id, message) }
            }
        }
    }

    private func unreadable(_ reason: String) -> Int32 {
        logger.error("worker stops: the host's frames cannot be read", [("library", .string(library.name)), ("reason", .string(reason))])
        return 1
    }

    /// Queues a `message` request's frame body (copied into `pending`) for
    /// the pipeline thread, starting that thread with the first; throws
    /// when it cannot start.
    private func enqueuePipelined(_ body: UnsafeRawBufferPointer) throws(Errno) {
        let first = pipeline.withLock { () -> Bool in
            let wasEmpty = pending.isEmpty
            var length = UInt32(body.count).littleEndian
            withUnsafeBytes(of: &length) { pending.append($0) }
            pending.append(body)
            if pipelineStarted {
                if wasEmpty { pipeline.broadcast() }
                return false
            }
            pipelineStarted = true
            return true
        }
        if first { try HostThread.start(name: "worker-pipeline") { [self] in runPipelined() } }
    }

    /// The pipeline thread: runs what came since it last looked, in order,
    /// holding the frames they send (their sends and replies) and writing
    /// them together after that run, so a burst of messages costs few
    /// system calls and no reply waits longer than its run. The requests
    /// are decoded where they lie in the queue's bytes: the plugin reads
    /// its message there, with no copy per message.
    private func runPipelined() {
        var running = FrameBuffer(capacity: 64 << 10)
        pipeline.lock()
        while true {
            while pending.isEmpty { pipeline.wait() }
            swap(&pending, &running)
            pipeline.unlock()
            channel.hold()
            let bytes = running.bytes
            var offset = 0
            while offset < bytes.count {
                let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 4 + length)])
                offset += 4 + length
                // The reader decoded it once already; it cannot fail here.
                guard let request = try? WorkerCodec.decodeMessageRequest(body) else { continue }
                serveMessage(request)
            }
            running.removeAll()
            try? channel.release()
            pipeline.lock()
        }
    }

    /// Runs one pipelined `message` request and sends its reply.
    private func serveMessage(_ request: (id: UInt64, handler: UInt32, instance: UInt64, comm: UInt64, payload: PayloadView)) {
        let (status, errorText) = WorkerCallContext.serving(request.id, pipelined: true, payload: request.payload) { () -> commhost_status in
            guard let handler = handler(request.handler) else { return COMMHOST_EINVAL }
            guard let messageFn = handler.message else { return COMMHOST_OK }
            return request.payload.withMessage { messageFn(handler.raw, Self.pointer(request.instance), Self.handle(request.comm), $0) }
        }
        try? channel.send(WorkerMessage.reply(status: status, error: errorText, value: 0, bytes: []), id: request.id)
    }

    /// Runs one request on this thread and sends its reply.
    private func serveRequest(_ id: UInt64, _ message: WorkerMessage) {
        let (outcome, errorText) = WorkerCallContext.serving(id) { perform(message) }
        // A reply that cannot be sent means the host is gone; the reader sees that too.
        try? channel.send(WorkerMessage.reply(status: outcome.status, error: errorText, value: outcome.value, bytes: outcome.bytes), id: id)
        if case .deinitialize = message {
            // The library is done: stop reading, so serve returns and the worker exits.
            channel.shutdownBoth()
        }
    }

    /// What a callback answered: its status, and the instance or snapshot bytes.
    private struct Outcome {
        var status: commhost_status
        var value: UInt64 = 0
        var bytes: [UInt8] = []
    }

    private func perform(_ message: WorkerMessage) -> Outcome {
        let state = library.state.withLock { $0 }
        switch message {
        case .initialize(let config):
            guard let initFn = library.initFn else { return Outcome(status: COMMHOST_OK) }
            var out: UnsafeMutableRawPointer? = nil
            let status = config.withUnsafeBytes { raw in
                initFn(hostTable, commhost_str(ptr: raw.baseAddress?.assumingMemoryBound(to: CChar.self), len: raw.count), &out)
            }
            library.state.withLock { $0 = out }
            return Outcome(status: status)

        case .open(let index, let comm, let payload):
            guard let handler = handler(index) else { return Outcome(status: COMMHOST_EINVAL) }
            handles.commArrived(comm)
            var instance: UnsafeMutableRawPointer? = nil
            let status = Self.message(payload).withMessage { handler.open(handler.raw, state, Self.handle(comm.token), $0, &instance) }
            if status != COMMHOST_OK { handles.commClosed(comm.token) }
            return Outcome(status: status, value: Self.value(instance))

        case .close(let index, let instance, let comm, let payload, let cause):
            guard let handler = handler(index) else { return Outcome(status: COMMHOST_EINVAL) }
            if let closeFn = handler.close {
                Self.message(payload).withMessage { closeFn(handler.raw, Self.pointer(instance), Self.handle(comm), $0, cause) }
            }
            handles.commClosed(comm)
            return Outcome(status: COMMHOST_OK)

        case .snapshot(let index, let instance, let comm):
            guard let handler = handler(index) else { return Outcome(status: COMMHOST_EINVAL) }
            guard let snapshotFn = handler.snapshot else {
                WorkerCallContext.current.errorText = "handler \"\(handler.name)\" has no snapshot"
                return Outcome(status: COMMHOST_EUNSUPPORTED)
            }
            let (status, bytes) = SnapshotWriter.collect { writer in
                snapshotFn(handler.raw, Self.pointer(instance), Self.handle(comm), writer)
            }
            return Outcome(status: status, bytes: status == COMMHOST_OK ? bytes : [])

        case .restore(let index, let comm, let fromVersion, let saved):
            guard let handler = handler(index) else { return Outcome(status: COMMHOST_EINVAL) }
            guard let restoreFn = handler.restore else {
                WorkerCallContext.current.errorText = "handler \"\(handler.name)\" has no restore"
                return Outcome(status: COMMHOST_EUNSUPPORTED)
            }
            handles.commArrived(comm)
            var instance: UnsafeMutableRawPointer? = nil
            var version = Array(fromVersion.utf8)
            let status = saved.withUnsafeBufferPointer { bytes in
                version.withUnsafeMutableBytes { text in
                    restoreFn(handler.raw, state, Self.handle(comm.token),
                              commhost_str(ptr: text.baseAddress?.assumingMemoryBound(to: CChar.self), len: text.count),
                              commhost_bytes(ptr: bytes.baseAddress, len: bytes.count), &instance)
                }
            }
            if status != COMMHOST_OK { handles.commClosed(comm.token) }
            return Outcome(status: status, value: Self.value(instance))

        case .sessionStart(let session, let sessionID, let cause):
            handles.sessionStarting(session, id: sessionID)
            guard let sessionStartFn = library.sessionStartFn else { return Outcome(status: COMMHOST_OK) }
            var data: UnsafeMutableRawPointer? = nil
            let status = sessionStartFn(state, Self.handle(session), cause, &data)
            // Kept also on failure: session_end still runs and is given it.
            handles.setSessionData(session, data)
            return Outcome(status: status)

        case .sessionEnd(let session, let cause):
            library.sessionEndFn?(state, Self.handle(session), handles.sessionData(session), cause)
            handles.sessionEnded(session)
            return Outcome(status: COMMHOST_OK)

        case .sessionWritable(let session):
            handles.setSessionBlocked(session, false)
            library.sessionWritableFn?(state, Self.handle(session), handles.sessionData(session))
            return Outcome(status: COMMHOST_OK)

        case .task(let task, let status):
            guard tasks.run(task, status: status) else {
                WorkerCallContext.current.errorText = "the worker has no task \(task) (never scheduled, or it had its last call)"
                logger.error("host asked the worker to run a task it does not know", [("library", .string(library.name)),
                                                                                      ("task", .string(String(task)))])
                return Outcome(status: COMMHOST_EINVAL)
            }
            return Outcome(status: COMMHOST_OK)

        case .deinitialize:
            library.deinitFn?(state)
            return Outcome(status: COMMHOST_OK)

        case .message, .hello, .refusal, .reply, .hostCall, .hostReply, .sessionBlocked:
            // The reader never hands these to a request thread (a message goes to `serveMessage`).
            return Outcome(status: COMMHOST_EINVAL)
        }
    }

    /// The handler at `index`, or nil (with the request's error text) when there is none.
    private func handler(_ index: UInt32) -> WorkerLibrary.Handler? {
        guard Int(index) < library.handlers.count else {
            WorkerCallContext.current.errorText = "the library has no handler \(index) (it has \(library.handlers.count))"
            return nil
        }
        return library.handlers[Int(index)]
    }

    /// A host token as the handle value plugins hold.
    static func handle(_ token: UInt64) -> OpaquePointer? { OpaquePointer(bitPattern: UInt(token)) }
    /// A handle value the plugin passed, as the host's token.
    static func token(_ handle: OpaquePointer?) -> UInt64 { UInt64(UInt(bitPattern: handle.map { Int(bitPattern: UnsafeRawPointer($0)) } ?? 0)) }
    /// An instance pointer as it crosses to the host.
    static func value(_ pointer: UnsafeMutableRawPointer?) -> UInt64 { UInt64(UInt(bitPattern: pointer)) }
    /// An instance the host passed back, as the plugin's pointer.
    static func pointer(_ value: UInt64) -> UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: UInt(value)) }

    private static func message(_ payload: WorkerPayload) -> OwnedMessage {
        OwnedMessage(data: payload.data, metadata: payload.metadata, buffers: payload.buffers)
    }
}
