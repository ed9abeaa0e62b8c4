import CommPluginAPI
import Glibc
import Synchronization

/// How a worker is started and watched: the executable, the callback
/// deadline and the resource limits set before the library is loaded.
public struct WorkerLaunch: Sendable, Equatable {
    /// The `commhost` executable that runs `commhost worker`.
    public var executable: String
    /// How long one callback may take before the worker is killed.
    public var handlerTimeoutMilliseconds: Int
    /// RLIMIT_AS, RLIMIT_CPU (seconds) and RLIMIT_NOFILE for the worker, when set.
    public var addressSpaceBytes: Int?, cpuSeconds: Int?, openFiles: Int?

    public init(executable: String, handlerTimeoutMilliseconds: Int = 5000, addressSpaceBytes: Int? = nil,
                cpuSeconds: Int? = nil, openFiles: Int? = nil) {
        self.executable = executable
        self.handlerTimeoutMilliseconds = handlerTimeoutMilliseconds
        self.addressSpaceBytes = addressSpaceBytes
        self.cpuSeconds = cpuSeconds
        self.openFiles = openFiles
    }

    /// The arguments after `commhost worker`.
    var arguments: [String] {
        var list: [String] = []
        if let addressSpaceBytes { list += ["--address-space", String(addressSpaceBytes)] }
        if let cpuSeconds { list += ["--cpu-seconds", String(cpuSeconds)] }
        if let openFiles { list += ["--open-files", String(openFiles)] }
        return list
    }
}

/// One `commhost worker` child process and the host's end of its socket
/// pair: requests out with a wait for their reply (running the host calls
/// made under them meanwhile), comm_msg requests pipelined without a wait
/// (`WorkerPipeline`), a reader thread for replies and for host calls from
/// the plugin's own threads and pipelined callbacks, and the exit status
/// once it dies.
final class WorkerProcess: @unchecked Sendable {
    // @unchecked: `pid` and `channel` are immutable; `state` is behind its lock.

    /// The fd the worker finds its end of the socket pair on.
    static let workerFD: Int32 = 3

    let pid: pid_t
    let channel: WorkerChannel
    let options: WorkerLaunch
    /// The comm_msg requests sent and not yet answered.
    private let pipeline: WorkerPipeline

    /// What ended the worker, once it has: "signal 11 (Segmentation fault)", "exit status 3",
    /// "killed: callback … did not return within 5000 ms".
    var deathReason: String? { state.withLock { $0.death } }

    /// Runs the host calls the plugin makes from its own threads (`during` 0),
    /// under a pipelined request (with its call as `CallContext.pipelinedCall`)
    /// and under a request whose caller is no longer waiting. Set before the
    /// reader starts; returns the `hostReply`.
    var executeHostCall: (@Sendable (WorkerHostCall) -> WorkerMessage)?
    /// Runs a `pipelinedSend` the worker answered (no reply), with the
    /// message borrowed from the read buffer; set with `executeHostCall`.
    var executePipelinedSend: (@Sendable (_ comm: UInt64, _ payload: PayloadView?) -> Void)?
    /// The served library's name, for the text of calls the death ends. Set before the reader starts.
    var libraryName = ""
    /// Called once, on the reader thread, when the worker has died.
    var onDeath: (@Sendable (String) -> Void)?

    private struct State {
        var waiting: [UInt64: Waiter] = [:]
        var death: String?
        /// The requests in flight (for the crash log).
        var inFlight: [UInt64: WorkerCallback] = [:]
        /// The waited-for request sent last and its id (the pipeline keeps
        /// its own last; the crash log names whichever came later).
        var lastCallback: (id: UInt64, what: WorkerCallback)?
    }
    /// The next request's id: ids are never reused (so a reply names one
    /// request, waited for or pipelined). Taken without a lock.
    private let nextID = Atomic<UInt64>(1)
    /// Guards the requests, their waiters and the worker's death: callers, the reader thread and the watchdog contend for it.
    private let state = Locked(State())

    /// One caller waiting for its reply.
    private final class Waiter: @unchecked Sendable {
        // @unchecked: every field is touched holding `lock`.
        /// Guards the fields below; the caller sleeps on it until its reply (or the death) comes.
        let lock = ConditionLock()
        var reply: WorkerMessage?
        var calls: [(UInt64, WorkerHostCall)] = []
        var dead = false
    }

    /// Starts `commhost worker` for the staged library at `stagedPath` and
    /// waits for its hello. Throws a reason when it cannot start or refuses.
    static func start(stagedPath: String, options: WorkerLaunch, maxFrameBytes: Int) throws(WorkerStartFailure) -> (WorkerProcess, WorkerDescriptor) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw WorkerStartFailure(reason: "socketpair failed: \(Errno.current)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // stdin from /dev/null, stdout to stderr (a plugin's printf must never
        // reach the host's frame stream), the socket at fd 3; the worker closes
        // every other descriptor it inherited before loading the library (a
        // client's socket held open by a worker would outlive its session).
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], workerFD)
        let arguments = ["commhost", "worker", "--fd", String(workerFD), "--library", stagedPath] + options.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var pid: pid_t = 0
        // The Swift runtime's crash backtrace would go to the host's log
        // stream as plain text; the host logs the worker's death itself.
        var environment: [UnsafeMutablePointer<CChar>?] = [strdup("SWIFT_BACKTRACE=enable=no")]
        var entry = environ
        while let variable = entry.pointee {
            if strncmp(variable, "SWIFT_BACKTRACE=", 16) == 0 {
                // replaced above
            } else if strncmp(variable, "ASAN_OPTIONS=", 13) == 0 {
                // Under AddressSanitizer (CI's sanitizer run) a plugin's crash
                // must still end the worker with its own signal, which is the
                // worker's contract, rather than become a sanitizer report and
                // exit code; leaks at a worker's death are not meaningful.
                environment.append(strdup(String(cString: variable)
                    + ":handle_segv=0:handle_abort=0:handle_sigbus=0:handle_sigill=0:handle_sigfpe=0:detect_leaks=0"))
            } else {
                environment.append(strdup(variable))
            }
            entry += 1
        }
        environment.append(nil)
        defer { for variable in environment { free(variable) } }
        let spawned = posix_spawn(&pid, options.executable, &actions, nil, &argv, &environment)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw WorkerStartFailure(reason: "cannot start \(options.executable) worker: \(Errno(rawValue: spawned))")
        }
        let channel = WorkerChannel(fd: fds[0], maxFrameBytes: maxFrameBytes)
        let hello: WorkerMessage
        do {
            hello = try channel.receive().message
        } catch {
            let status = reap(pid).0
            close(fds[0])
            throw WorkerStartFailure(reason: "the worker ended before it said hello (\(status)): \(error)")
        }
        switch hello {
        case .hello(let descriptor):
            return (WorkerProcess(pid: pid, channel: channel, options: options), descriptor)
        case .refusal(let reason):
            _ = reap(pid)
            close(fds[0])
            throw WorkerStartFailure(reason: reason)
        default:
            Glibc.kill(pid, SIGKILL)
            _ = reap(pid)
            close(fds[0])
            throw WorkerStartFailure(reason: "the worker's first frame was not a hello")
        }
    }

    private init(pid: pid_t, channel: WorkerChannel, options: WorkerLaunch) {
        self.pid = pid
        self.channel = channel
        self.options = options
        pipeline = WorkerPipeline(deadlineNanoseconds: UInt64(max(options.handlerTimeoutMilliseconds, 1)) * 1_000_000)
    }

    /// Starts the reader thread; set `executeHostCall` and `onDeath` first.
    /// Throws when the thread cannot start.
    func startReading() throws(Errno) {
        try HostThread.start(name: "worker-reader") { [self] in readLoop() }
    }

    /// Sends `message` (one plugin callback, described by `what` for the
    /// crash log) and waits for its reply, running the host calls made under
    /// it on this thread with `execute`. Returns nil when the worker died (or
    /// was killed for missing the deadline) before replying.
    /// Every pipelined request sent before it has been answered first, so no
    /// other request overlaps one in the worker.
    func request(_ message: WorkerMessage, what: WorkerCallback, execute: (WorkerHostCall) -> WorkerMessage) -> WorkerMessage? {
        // Frames this thread holds for any worker go out before it waits.
        CallContext.current.releaseHeldFrames()
        guard awaitPipeline(untilFewerThan: 0) else { return nil }
        let waiter = Waiter()
        let id = state.withLock { state -> UInt64? in
            guard state.death == nil else { return nil }
            let id = nextID.add(1, ordering: .relaxed).oldValue
            state.waiting[id] = waiter
            state.inFlight[id] = what
            state.lastCallback = (id, what)
            return id
        }
        guard let id else { return nil }
        defer { state.withLock { _ = $0.waiting.removeValue(forKey: id); _ = $0.inFlight.removeValue(forKey: id) } }
        do {
            try channel.send(message, id: id)
        } catch {
            return nil
        }
        let deadline = MonotonicClock.seconds() + Double(options.handlerTimeoutMilliseconds) / 1000
        waiter.lock.lock()
        while true {
            if let reply = waiter.reply {
                waiter.lock.unlock()
                return reply
            }
            if waiter.dead {
                waiter.lock.unlock()
                return nil
            }
            if !waiter.calls.isEmpty {
                let (callID, call) = waiter.calls.removeFirst()
                waiter.lock.unlock()
                let answer = execute(call)
                try? channel.send(answer, id: callID)
                waiter.lock.lock()
                continue
            }
            let left = deadline - MonotonicClock.seconds()
            if left <= 0 {
                waiter.lock.unlock()
                kill(because: "\(what.description) did not return within \(options.handlerTimeoutMilliseconds) ms (handler_timeout_ms)")
                return nil
            }
            waiter.lock.wait(seconds: left)
        }
    }

    /// Sends a comm_msg request without waiting for its reply: `call` ends
    /// when the reply comes (on the reader thread), and the host calls made
    /// under it run there with it. Waits only when `WorkerPipeline.capacity`
    /// requests are in flight, until half of them are answered. False when
    /// the worker died (or was killed for
    /// missing the deadline) before it could be sent.
    func pipeline(_ message: some WorkerFrame, what: WorkerCallback, call: PipelinedCall) -> Bool {
        // One lock per comm_msg on this path: the pipeline's (the wait for
        // room, the add, the last callback for the crash log); a worker
        // being killed refuses it there.
        let id = nextID.add(1, ordering: .relaxed).oldValue
        switch pipeline.add(id: id, call: call, what: what, beforeBlocking: { CallContext.current.releaseHeldFrames() }) {
        case .added(let first):
            if first { armWatchdog(afterNanoseconds: UInt64(options.handlerTimeoutMilliseconds) * 1_000_000) }
        case .dead:
            return false
        case .overdue(let what):
            kill(because: "\(what.description) did not return within \(options.handlerTimeoutMilliseconds) ms (handler_timeout_ms)")
            return false
        }
        // In a session's run of frames, held back and written with the rest of the run.
        let context = CallContext.current
        if context.batchDepth > 0 {
            channel.hold()
            context.holding(channel)
        }
        // A send that fails means the worker is gone; the reader ends the call.
        try? channel.send(message, id: id)
        return true
    }

    /// Waits until fewer than `limit` pipelined requests are in flight
    /// (0: none); kills the worker when the oldest is past the deadline.
    /// False when the worker is gone.
    private func awaitPipeline(untilFewerThan limit: Int) -> Bool {
        // The worker answers only what it has read.
        switch pipeline.wait(untilFewerThan: limit, beforeBlocking: { CallContext.current.releaseHeldFrames() }) {
        case .ready: return true
        case .dead: return false
        case .overdue(let what):
            kill(because: "\(what.description) did not return within \(options.handlerTimeoutMilliseconds) ms (handler_timeout_ms)")
            return false
        }
    }

    /// A pipelined callback that never returns must still be cut off at the
    /// deadline when nothing waits on it: one timer per worker, re-armed for
    /// the oldest request in flight while there is one.
    private func armWatchdog(afterNanoseconds nanoseconds: UInt64) {
        TimerQueue.shared.schedule(afterNanoseconds: nanoseconds) { [self] in
            let (overdue, nextIn) = pipeline.check()
            if let overdue {
                kill(because: "\(overdue.description) did not return within \(options.handlerTimeoutMilliseconds) ms (handler_timeout_ms)")
            } else if let nextIn {
                armWatchdog(afterNanoseconds: nextIn)
            }
        }
    }

    /// Kills the worker (a missed deadline, or the host no longer needs it);
    /// the reader then reports its death with `reason`.
    func kill(because reason: String) {
        let first = state.withLock { state -> Bool in
            guard state.death == nil else { return false }
            state.death = "killed: \(reason)"
            return true
        }
        if first {
            pipeline.refuse()
            Glibc.kill(pid, SIGKILL)
        }
    }

    /// The callback the worker was running last (for the crash log): a
    /// waited-for request in flight, else the request sent last, waited for
    /// or pipelined.
    var lastCallback: String? {
        let (inFlight, waited) = state.withLock { ($0.inFlight.values.first, $0.lastCallback) }
        if let inFlight { return inFlight.description }
        guard let pipelined = pipeline.lastAddedCallback else { return waited?.what.description }
        guard let waited, waited.id > pipelined.id else { return pipelined.what.description }
        return waited.what.description
    }

    private func readLoop() {
        // The delivery open for the session the last pipelined sends went
        // to; ended before the reader may block, and before any frame but
        // a send or a reply.
        var delivery: DeliveryBatch?
        while true {
            if delivery != nil, !channel.hasWholeFrame {
                delivery?.endDelivery()
                delivery = nil
            }
            do {
                let body = try channel.receiveBody()
                // The sends a worker answered, the most frequent frame, are
                // run on the bytes where they lie: no copy of the message.
                let ran = try WorkerCodec.withPipelinedSend(body) { _, during, comm, payload in
                    runPipelinedSend(during, comm, payload, delivery: &delivery)
                }
                if ran == true { continue }
                // So are the replies that end pipelined calls OK (ids are never
                // reused, so the pipeline and the waiting requests never share
                // one); any other reply is read by `handleFrame`.
                if let id = try WorkerCodec.decodeOKReply(body), let call = pipeline.take(id) {
                    call.finished(status: COMMHOST_OK, errorText: nil)
                    continue
                }
                try handleFrame(body, delivery: &delivery)
            } catch {
                break
            }
        }
        delivery?.endDelivery()
        let (ended, signal) = Self.reap(pid)
        let status = ended + limitNote(for: signal)
        let reason = state.withLock { state -> String in
            if state.death == nil { state.death = status }
            for waiter in state.waiting.values {
                waiter.lock.withLock {
                    waiter.dead = true
                    waiter.lock.broadcast()
                }
            }
            return state.death!
        }
        for entry in pipeline.takeAll() {
            entry.call.finished(status: COMMHOST_EFAIL, errorText: "handler crashed: the worker serving library \(libraryName) ended (\(reason))")
        }
        close(channel.fd)
        onDeath?(reason)
    }

    /// Any frame but the hot two (a pipelined call's send and reply), decoded
    /// into a `WorkerMessage`. Out of line, so the reader's loop does not
    /// set up and destroy a message for every frame.
    @inline(never)
    private func handleFrame(_ body: UnsafeRawBufferPointer, delivery: inout DeliveryBatch?) throws(WorkerCodec.Malformed) {
        let frame = try WorkerCodec.decode(body)
        if case .reply = frame.message {} else if delivery != nil {
            delivery?.endDelivery()
            delivery = nil
        }
        switch frame.message {
        case .reply(let status, let error, _, _):
            if let call = pipeline.take(frame.id) {
                // A pipelined call's that failed (or said more than OK).
                call.finished(status: status, errorText: status == COMMHOST_OK ? nil : error)
            } else if let waiter = state.withLock({ $0.waiting[frame.id] }) {
                // A waiting request's.
                waiter.lock.withLock {
                    waiter.reply = frame.message
                    waiter.lock.broadcast()
                }
            }
        case .hostCall(let during, let call):
            if during != 0, let waiter = state.withLock({ $0.waiting[during] }) {
                waiter.lock.withLock {
                    waiter.calls.append((frame.id, call))
                    waiter.lock.broadcast()
                }
            } else if let execute = executeHostCall {
                let context = CallContext.current
                var answer = WorkerMessage.hostReply(status: COMMHOST_EINVAL, value: 0, text: "")
                if during != 0, let pipelined = pipeline.call(for: during) {
                    context.pipelinedCall = pipelined
                    pipelined.delivering { answer = execute(call) }
                    context.pipelinedCall = nil
                } else {
                    answer = execute(call)
                }
                switch call {
                case .log, .pipelinedSend: return
                default: try? channel.send(answer, id: frame.id)
                }
            }
        default:
            // Anything else from a worker is a protocol breach: stop it.
            kill(because: "it sent an unexpected frame")
        }
    }

    /// Runs a `pipelinedSend` under the pipelined call it belongs to, as
    /// the `hostCall` case of `readLoop` would; false (nothing done) when a
    /// thread waits on the request it names, which then gets it through the
    /// general path.
    private func runPipelinedSend(_ during: UInt64, _ comm: UInt64, _ payload: PayloadView?, delivery: inout DeliveryBatch?) -> Bool {
        guard let execute = executePipelinedSend else { return true }
        // Ids are never reused, so the pipeline and the waiters never share one.
        if during != 0, let pipelined = pipeline.call(for: during) {
            delivery = pipelined.beginDelivery(continuing: delivery)
            let context = CallContext.current
            context.pipelinedCall = pipelined
            execute(comm, payload)
            context.pipelinedCall = nil
            return true
        }
        if during != 0, state.withLock({ $0.waiting[during] }) != nil { return false }
        delivery?.endDelivery()
        delivery = nil
        execute(comm, payload)
        return true
    }

    /// The limit a death by `signal` most likely met, named for the log.
    private func limitNote(for signal: Int32) -> String {
        if signal == SIGXCPU, let cpu = options.cpuSeconds { return "; the cpu_seconds limit (\(cpu) s) was reached" }
        if signal != 0, let bytes = options.addressSpaceBytes {
            return "; the worker ran under address_space_bytes \(bytes), past which allocations fail"
        }
        return ""
    }

    /// Waits for `pid` and describes how it ended, with the signal it died of (0 for an exit).
    private static func reap(_ pid: pid_t) -> (String, Int32) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            let failure = Errno.current
            if failure != .interrupted { return ("exit status unknown (\(failure))", 0) }
        }
        let signal = status & 0x7f
        if signal == 0 { return ("exit status \((status >> 8) & 0xff)", 0) }
        let name = String(cString: strsignal(signal))
        return ("signal \(signal) (\(name))", signal)
    }
}

/// Which callback a request is, for the log when the worker dies in it:
/// the callback's name and the comm it is for (a handle token, 0 for none),
/// turned into text only then.
struct WorkerCallback: Sendable {
    var name: StaticString
    var comm: UInt64 = 0

    /// "comm_msg for comm "c1" (target t)", looked up when needed.
    var description: String {
        guard comm != 0, let names = CommHandle.table.names(UInt(comm)),
              let id = HostAPI.string(names.firstSlice), let target = HostAPI.string(names.secondSlice) else { return "\(name)" }
        return "\(name) for comm \(JSONText.string(id)) (target \(target))"
    }
}

/// Why a worker could not be started.
struct WorkerStartFailure: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}
