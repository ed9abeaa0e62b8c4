import Glibc
import Synchronization

/// A session's serialized context: at most one thread is inside it at a
/// time, and every call into a plugin for the session is made from inside
/// it, so those calls never overlap or re-enter. Work that must run inside
/// it (`SessionJob`: a close callback, a task, session_writable) can be
/// queued from any thread; it runs before the thread inside leaves, right
/// after the current callback when it was queued from inside one.
final class SerialContext: @unchecked Sendable {
    // @unchecked: `serial` and `jobs` are locks, `owner` and `jobsQueued` atomics.

    /// Held by the thread inside the context, from `enter` to `leave`.
    private let serial = ConditionLock()
    /// The thread inside the context (its `pthread_self`), 0 if none.
    private let owner = Atomic<UInt>(0)
    /// Guards the work queued for the context from anywhere.
    private let jobs = Locked<[SessionJob]>([])
    /// How many jobs `jobs` holds, changed holding its lock and read
    /// without it: leaving with none queued (every frame's turn) skips the lock.
    private let jobsQueued = Atomic<Int>(0)

    /// Whether the calling thread is inside the context.
    @inline(__always)
    var isOwner: Bool { owner.load(ordering: .relaxed) == UInt(bitPattern: Int(bitPattern: pthread_self())) }

    /// Enters the context, waiting while another thread is inside.
    @inline(__always)
    func enter() {
        if !serial.tryLock() {
            // Whoever is inside may be waiting for a worker to answer
            // frames this thread holds back: write them before waiting.
            CallContext.current.releaseHeldFrames()
            serial.lock()
        }
        owner.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .relaxed)
    }

    /// Runs every queued job with `run` (including those queued while
    /// running them), then leaves the context.
    @inline(__always)
    func leave(running run: (SessionJob) -> Void) {
        drain(run)
        owner.store(0, ordering: .relaxed)
        serial.unlock()
    }

    /// Queues `job`; the caller makes sure some thread enters to run it.
    func append(_ job: SessionJob) {
        jobs.withLock {
            $0.append(job)
            jobsQueued.add(1, ordering: .relaxed)
        }
    }

    /// Runs every queued job with `run`, including those queued while running them.
    @inline(__always)
    func drain(_ run: (SessionJob) -> Void) {
        // A job queued by another thread after this load is run by the
        // serialized turn that thread starts once it has queued it.
        guard jobsQueued.load(ordering: .relaxed) > 0 else { return }
        while let batch = jobs.withLock({ list -> [SessionJob]? in
            guard !list.isEmpty else { return nil }
            jobsQueued.subtract(list.count, ordering: .relaxed)
            defer { list.removeAll() }
            return list
        }) {
            for job in batch { run(job) }
        }
    }
}

/// Work queued for a session's serialized context.
enum SessionJob {
    /// A close callback to run (the plugin closed the comm, maybe from another thread).
    case close(Comm, CloseCause, OwnedMessage)
    /// A post to run, a timer that fired, or a cancelled timer's last call.
    case task(SessionTask)
    /// The outbound queue drained after backpressure.
    case writable
}
