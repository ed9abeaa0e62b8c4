import Glibc

/// The comm_msg requests a host has sent to one worker and not yet seen
/// answered, oldest first (the worker answers them in the order sent). At
/// most `capacity` are in flight: a session that would send more waits,
/// which bounds what a stuck worker can make the host hold. A waiter gives
/// up when the oldest request is past the callback deadline (the caller
/// then kills the worker) or the worker has died.
final class WorkerPipeline: @unchecked Sendable {
    // @unchecked: `entries`, `dead` and `watchdogArmed` are touched only holding `lock`.

    /// Requests in flight at most: 64 sessions keeping 16 each in flight fit.
    static let capacity = 1024
    /// A sender that found the pipeline full waits until it has drained to
    /// this many. Waking it as soon as there is room for one would hand the
    /// CPU between the sender and the reader once per message for as long
    /// as the pipeline stays full.
    static let resumeAt = capacity / 2

    struct Entry {
        let id: UInt64
        let call: PipelinedCall
        let what: WorkerCallback
        /// When it was sent (`MonotonicClock.nanoseconds()`).
        let sent: UInt64
    }

    /// What a wait came to.
    enum Wait {
        case ready
        /// The worker has died; nothing more can be sent.
        case dead
        /// The oldest request is past the deadline: the worker must be killed.
        case overdue(WorkerCallback)
    }

    /// Guards the entries in flight; a sender waits on it while the pipeline is full.
    private let lock = ConditionLock()
    /// In flight from `head` on (answered ones before it are dropped in bulk).
    private var entries: [Entry] = []
    private var head = 0
    /// How many are in flight.
    private var count: Int { entries.count - head }
    private var oldest: Entry? { head < entries.count ? entries[head] : nil }
    private var dead = false
    private var watchdogArmed = false
    private let deadline: UInt64

    /// `deadline`: how long one callback may take, in nanoseconds.
    init(deadlineNanoseconds deadline: UInt64) {
        self.deadline = deadline
    }

    /// Waits until fewer than `limit` requests are in flight (0: none);
    /// once it finds `capacity` in flight, until no more than `resumeAt`
    /// are. `beforeBlocking` runs once, without the lock, before the first
    /// time it would block (to write frames the caller holds back).
    func wait(untilFewerThan limit: Int, beforeBlocking: () -> Void) -> Wait {
        lock.lock()
        defer { lock.unlock() }
        var prepared = false
        var limit = limit
        while true {
            if dead { return .dead }
            guard let oldest, count >= max(limit, 1) else { return .ready }
            if limit >= Self.capacity { limit = Self.resumeAt + 1 }
            if !prepared {
                prepared = true
                lock.unlock()
                beforeBlocking()
                lock.lock()
                continue
            }
            let now = MonotonicClock.nanoseconds()
            let due = oldest.sent &+ deadline
            if now >= due { return .overdue(oldest.what) }
            lock.wait(seconds: Double(due - now) / 1e9)
        }
    }

    /// Adds a request about to be sent; its call learns it is owed an end
    /// before anything can end it. Returns nil when the worker has died,
    /// else whether the caller must arm the watchdog (the first in flight).
    func add(id: UInt64, call: PipelinedCall, what: WorkerCallback) -> Bool? {
        lock.withLock {
            guard !dead else { return nil }
            call.dispatched()
            entries.append(Entry(id: id, call: call, what: what, sent: MonotonicClock.nanoseconds()))
            if watchdogArmed { return false }
            watchdogArmed = true
            return true
        }
    }

    /// The request `id`, if it is in flight.
    func call(for id: UInt64) -> PipelinedCall? {
        lock.withLock { entries[head...].first { $0.id == id }?.call }
    }

    /// Removes the request `id` (answered), waking whoever waits for room.
    /// Usually the oldest: the worker answers in the order requests reach
    /// it, which differs from the order they were added only when another
    /// thread's were held back meanwhile.
    func take(_ id: UInt64) -> Entry? {
        lock.withLock {
            guard let entry = oldest else { return nil }
            // Waiters wait for the pipeline to drain to `resumeAt`, or for
            // none in flight: woken only when the count reaches one of those.
            if count == Self.resumeAt + 1 || count == 1 { lock.broadcast() }
            guard entry.id == id else {
                guard let index = entries[head...].firstIndex(where: { $0.id == id }) else { return nil }
                return entries.remove(at: index)
            }
            head += 1
            if head == entries.count {
                entries.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024 {
                entries.removeFirst(head)
                head = 0
            }
            return entry
        }
    }

    /// The worker died: every request in flight, and no more from now on.
    func takeAll() -> [Entry] {
        lock.withLock {
            dead = true
            lock.broadcast()
            defer {
                entries.removeAll()
                head = 0
            }
            return Array(entries[head...])
        }
    }

    /// For the watchdog: the oldest request when it is past the deadline,
    /// else nanoseconds until it will be (nil, disarming, when none is in flight).
    func check() -> (overdue: WorkerCallback?, nextIn: UInt64?) {
        lock.withLock {
            guard !dead, let oldest else {
                watchdogArmed = false
                return (nil, nil)
            }
            let now = MonotonicClock.nanoseconds(), due = oldest.sent &+ deadline
            if now >= due { return (oldest.what, nil) }
            return (nil, due - now)
        }
    }
}
