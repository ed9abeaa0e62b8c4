import CommPluginAPI
import Dispatch
import Glibc

/// The worker's side of the protocol (`WorkerMessage`), served by two
/// *lanes*, the thread calling `serve` and one more started with the first
/// comm_msg, that take turns: at any time one of them reads the host's
/// frames while the other runs pipelined `message` requests or waits. A
/// lane that reads a `message` while none is queued or running runs it at
/// once itself and hands the reading to the other lane first, so a single
/// comm_msg crosses no thread in the worker and the host's next frames are
/// read meanwhile; one that comes while another runs is queued, and the
/// queue is run in order, one at a time, by the lane that finds it. Every
/// other request runs the plugin callback it names on a thread of its own
/// from the global pool. Whatever a callback waits for (a `hostReply`, a
/// plugin thread's call) is read by the lane that is not running it. The
/// host serializes callbacks as it would in-process (and sends no other
/// request while a `message` is unanswered), so plugin calls take no lock
/// here; the worker's own tables (host calls in flight, tasks, handle
/// names) are locked.
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
    /// Guards the lanes' shared state below.
    private let lanes = ConditionLock()
    /// Pipelined `message` requests not yet run, in the order they came
    /// (each frame body after its `UInt32` length).
    private var pending = FrameBuffer(capacity: 64 << 10)
    /// A lane is reading the host's frames.
    private var reading = false
    /// A lane is running `message` requests.
    private var running = false
    private var secondLaneStarted = false
    /// How serving ended, once it has.
    private var exitCode: Int32?

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
        return lane(main: true)
    }

    /// What reading one frame came to.
    private enum Read {
        /// A `message` request, checked; its body lies in the read buffer
        /// until the next read.
        case message(UnsafeRawBufferPointer)
        /// Anything else, dealt with.
        case handled
        /// Serving is over, with this exit code.
        case end(Int32)
    }

    /// One lane: reads when no lane reads, runs queued requests when no
    /// lane runs them, else waits. The main lane returns the exit code;
    /// the other ends the process when serving ends while the main lane
    /// is inside a callback (as a return from `serve` would).
    private func lane(main: Bool) -> Int32 {
        var batch = FrameBuffer(capacity: 64 << 10)
        let single = FrameBuffer(capacity: 4 << 10)
        lanes.lock()
        while true {
            if let exitCode {
                lanes.unlock()
                return exitCode
            }
            if !running, !pending.isEmpty {
                running = true
                swap(&pending, &batch)
                lanes.unlock()
                runMessages(batch)
                batch.removeAll()
                lanes.lock()
                running = false
                continue
            }
            guard !reading else {
                lanes.wait()
                continue
            }
            reading = true
            lanes.unlock()
            let read = readFrame()
            lanes.lock()
            switch read {
            case .handled:
                reading = false
            case .end(let code):
                reading = false
                exitCode = code
                lanes.broadcast()
                let mainIsBusy = running
                lanes.unlock()
                hostCalls.closeAll()
                if !main, mainIsBusy { exit(code) }
                return code
            case .message(let body):
                if !running, pending.isEmpty {
                    // Run here, now; the other lane reads meanwhile. The body
                    // is copied first: the next read may move the read buffer.
                    running = true
                    single.removeAll()
                    single.append(body)
                    reading = false
                    let startLane = !secondLaneStarted
                    secondLaneStarted = true
                    lanes.broadcast()
                    lanes.unlock()
                    if startLane, let code = startSecondLane() {
                        lanes.withLock { exitCode = code }
                        return code
                    }
                    runMessages(single, framed: false)
                    lanes.lock()
                    running = false
                } else {
                    let wasEmpty = pending.isEmpty
                    var length = UInt32(body.count).littleEndian
                    withUnsafeBytes(of: &length) { pending.append($0) }
                    pending.append(body)
                    reading = false
                    if wasEmpty { lanes.broadcast() }
                }
            }
        }
    }

    /// Starts the second lane; nil, or the exit code when it cannot start.
    private func startSecondLane() -> Int32? {
        do throws(Errno) {
            try HostThread.start(name: "worker-lane") { [self] in _ = lane(main: false) }
            return nil
        } catch {
            logger.error("worker stops: cannot start its second lane", [("library", .string(library.name)), ("error", .string("\(error)"))])
            return 1
        }
    }

    /// Reads one frame and deals with it, but for a `message`, which it
    /// checks and returns.
    private func readFrame() -> Read {
        let body: UnsafeRawBufferPointer
        do {
            body = try channel.receiveBody()
        } catch .closed {
            return .end(0)
        } catch {
            return .end(unreadable(error.description))
        }
        if body.first == WorkerCodec.Kind.message.rawValue {
            do {
                _ = try WorkerCodec.decodeMessageRequest(body)
            } catch {
                return .end(unreadable("malformed frame: \(error.description)"))
            }
            return .message(body)
        }
        let id: UInt64, message: WorkerMessage
        do {
            (id, message) = try WorkerCodec.decode(body)
        } catch {
            return .end(unreadable("malformed frame: \(error.description)"))
        }
        switch message {
        case .hostReply(let status, let value, let text):
            hostCalls.deliver(id: id, WorkerHostCalls.Reply(status: status, value: value, text: text))
        case .hello, .refusal, .reply, .hostCall:
            logger.error("worker stops: the host sent a frame only a worker sends", [("library", .string(library.name)),
                                                                                     ("frame", .string("\(message)"))])
            return .end(1)
        case .sessionBlocked(let session):
            handles.setSessionBlocked(session, true)
        case .message:
            // Taken above, before decoding.
            return .end(unreadable("a message request reached the decoder"))
        default:
            DispatchQueue.global().async { self.serveRequest(id, message) }
        }
        return .handled
    }

    private func unreadable(_ reason: String) -> Int32 {
        logger.error("worker stops: the host's frames cannot be read", [("library", .string(library.name)), ("reason", .string(reason))])
        return 1
    }

    /// Runs `message` requests in order (`framed`: each body after its
    /// `UInt32` length; else one body), holding the frames they send (their
    /// sends and replies) and writing them together at the end, so a burst
    /// costs few system calls and no reply waits longer than its run. Each
    /// is decoded where it lies: the plugin reads its message there, with
    /// no copy per message.
    private func runMessages(_ requests: FrameBuffer, framed: Bool = true) {
        channel.hold()
        let bytes = requests.bytes
        var offset = 0
        while offset < bytes.count {
            let length = framed ? Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) : bytes.count
            let start = framed ? offset + 4 : 0
            let body = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
            offset = start + length
            // Checked when it was read; it cannot fail here.
            guard let request = try? WorkerCodec.decodeMessageRequest(body) else { continue }
            serveMessage(request)
        }
        try? channel.release()
    }

    /// Runs one pipelined `message` request and sends its reply.
    private func serveMessage(_ request: (id: UInt64, handler: UInt32, instance: UInt64, comm: UInt64, payload: PayloadView)) {
        let (status, errorText) = WorkerCallContext.serving(request.id, pipelined: true, payload: request.payload) { () -> commhost_status in
            guard let handler = handler(request.handler) else { return COMMHOST_EINVAL }
            guard let messageFn = handler.message else { return COMMHOST_OK }
            return request.payload.withMessage { messageFn(handler.raw, Self.pointer(request.instance), Self.handle(request.comm), $0) }
        }
        try? channel.send(MessageReplyFrame(status: status, error: errorText), id: request.id)
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
        let state = library.libraryData.withLock { $0 }
        switch message {
        case .initialize(let config):
            guard let initFn = library.initFn else { return Outcome(status: COMMHOST_OK) }
            var out: UnsafeMutableRawPointer? = nil
            let status = config.withUnsafeBytes { raw in
                initFn(hostTable, commhost_str(ptr: raw.baseAddress?.assumingMemoryBound(to: CChar.self), len: raw.count), &out)
            }
            library.libraryData.withLock { $0 = out }
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
