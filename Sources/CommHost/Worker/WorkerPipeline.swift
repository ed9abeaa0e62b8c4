import Glibc

/// The comm_msg requests a host has sent to one worker and not yet seen
/// answered, oldest first (the worker answers them in the order sent). At
/// most `capacity` are in flight: a session that would send more waits,
/// which bounds what a stuck worker can make the host hold. A waiter gives
/// up when the oldest request is past the callback deadline (the caller
/// then kills the worker) or the worker has died.
final class WorkerPipeline: @unchecked Sendable {
    // @unchecked: `ring`, `head`, `count`, `dead`, `watchdogArmed` and `lastAdded` are touched only holding `lock`.

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

    /// An entry as the ring holds it: plain values (the call retained by
    /// hand), so that storing, reading and dropping a slot costs no
    /// reference counting and no generic value-witness call.
    private struct Slot {
        var id: UInt64
        var call: Unmanaged<PipelinedCall>?
        var what: WorkerCallback
        var sent: UInt64

        static let empty = Slot(id: 0, call: nil, what: WorkerCallback(name: ""), sent: 0)

        /// The entry, taking over the slot's reference to its call.
        func taken() -> Entry {
            Entry(id: id, call: call!.takeRetainedValue(), what: what, sent: sent)
        }
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
    /// In flight, oldest first: a ring of `count` slots from `head` (its
    /// size a power of two, doubled when full), so taking the oldest moves
    /// nothing. Touched only holding `lock`, so Swift's run-time
    /// exclusivity check is skipped.
    @exclusivity(unchecked) private var ring: [Slot] = Array(repeating: Slot.empty, count: 64)
    @exclusivity(unchecked) private var head = 0
    /// How many are in flight.
    @exclusivity(unchecked) private var count = 0
    private var oldest: Slot? { count > 0 ? ring[head] : nil }
    private var dead = false
    private var watchdogArmed = false
    private var lastAdded: (id: UInt64, what: WorkerCallback)?
    private let deadline: UInt64

    /// The ring's slot of the `index`-th entry in flight (0: the oldest).
    @inline(__always)
    private func slot(_ index: Int) -> Int { (head + index) & (ring.count - 1) }

    /// The position (0: the oldest) of the entry in flight with `id`.
    private func position(of id: UInt64) -> Int? {
        (0..<count).first { ring[slot($0)].id == id }
    }

    /// `deadline`: how long one callback may take, in nanoseconds.
    init(deadlineNanoseconds deadline: UInt64) {
        self.deadline = deadline
    }

    deinit {
        for index in 0..<count { ring[slot(index)].call?.release() }
    }

    /// Waits until fewer than `limit` requests are in flight (0: none);
    /// once it finds `capacity` in flight, until no more than `resumeAt`
    /// are. `beforeBlocking` runs once, without the lock, before the first
    /// time it would block (to write frames the caller holds back).
    func wait(untilFewerThan limit: Int, beforeBlocking: () -> Void) -> Wait {
        lock.lock()
        defer { lock.unlock() }
        return waitHoldingLock(untilFewerThan: limit, beforeBlocking: beforeBlocking)
    }

    /// `wait`, called holding `lock` (it may release and retake it).
    private func waitHoldingLock(untilFewerThan limit: Int, beforeBlocking: () -> Void) -> Wait {
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

    /// What adding a request came to.
    enum Added {
        /// It is in flight; the caller must arm the watchdog when `first` (none was before).
        case added(first: Bool)
        /// The worker has died (or is being killed); nothing more can be sent.
        case dead
        /// The oldest request is past the deadline: the worker must be killed.
        case overdue(WorkerCallback)
    }

    /// Adds a request about to be sent, once fewer than `capacity` are in
    /// flight (a full pipeline is waited for as `wait` does, with
    /// `beforeBlocking`); its call learns it is owed an end before anything
    /// can end it. One lock for the wait and the add: this runs once per
    /// comm_msg on the session's thread.
    func add(id: UInt64, call: PipelinedCall, what: WorkerCallback, beforeBlocking: () -> Void) -> Added {
        lock.lock()
        defer { lock.unlock() }
        switch waitHoldingLock(untilFewerThan: Self.capacity, beforeBlocking: beforeBlocking) {
        case .ready: break
        case .dead: return .dead
        case .overdue(let what): return .overdue(what)
        }
        return .added(first: insertHoldingLock(id: id, call: call, what: what))
    }

    /// Adds a request about to be sent, however many are in flight (no
    /// wait). Returns nil when the worker has died, else whether the caller
    /// must arm the watchdog (the first in flight).
    func add(id: UInt64, call: PipelinedCall, what: WorkerCallback) -> Bool? {
        lock.withLock {
            guard !dead else { return nil }
            return insertHoldingLock(id: id, call: call, what: what)
        }
    }

    /// Call holding `lock`, the worker alive: adds the request; true when it
    /// is the first in flight with no watchdog armed.
    private func insertHoldingLock(id: UInt64, call: PipelinedCall, what: WorkerCallback) -> Bool {
        call.dispatched()
        if count == ring.count {
            // The ring starts small and doubles when it fills.
            let grown = (0..<ring.count).map { ring[slot($0)] } + Array(repeating: Slot.empty, count: ring.count)
            ring = grown
            head = 0
        }
        ring[slot(count)] = Slot(id: id, call: .passRetained(call), what: what, sent: MonotonicClock.nanoseconds())
        count += 1
        lastAdded = (id, what)
        if watchdogArmed { return false }
        watchdogArmed = true
        return true
    }

    /// The request added last and its id (for the crash log), if any was.
    var lastAddedCallback: (id: UInt64, what: WorkerCallback)? {
        lock.withLock { lastAdded }
    }

    /// The worker is being killed: nothing more is added (whoever waits for
    /// room is woken and told); what is in flight stays for `takeAll`.
    func refuse() {
        lock.withLock {
            dead = true
            lock.broadcast()
        }
    }

    /// The request `id`, if it is in flight.
    func call(for id: UInt64) -> PipelinedCall? {
        lock.withLock { position(of: id).flatMap { ring[slot($0)].call?.takeUnretainedValue() } }
    }

    /// Removes the request `id` (answered), waking whoever waits for room,
    /// and returns its call (only the call: an `Entry?` dropped by its
    /// caller cost a generic value-witness call). Usually the oldest: the
    /// worker answers in the order requests reach it, which differs from the
    /// order they were added only when another thread's were held back
    /// meanwhile.
    func take(_ id: UInt64) -> PipelinedCall? {
        lock.withLock { takeSlot(id)?.call?.takeRetainedValue() }
    }

    /// Call holding `lock`: the slot of `id`, out of the ring (its call's
    /// reference passes to the caller).
    private func takeSlot(_ id: UInt64) -> Slot? {
        guard count > 0 else { return nil }
        // Waiters wait for the pipeline to drain to `resumeAt`, or for
        // none in flight: woken only when the count reaches one of those.
        if count == Self.resumeAt + 1 || count == 1 { lock.broadcast() }
        if ring[head].id == id {
            let taken = ring[head]
            head = slot(1)
            count -= 1
            return taken
        }
        guard let index = position(of: id) else { return nil }
        let taken = ring[slot(index)]
        // The younger ones move up a slot, keeping their order.
        for later in index..<(count - 1) { ring[slot(later)] = ring[slot(later + 1)] }
        count -= 1
        return taken
    }

    /// The worker died: every request in flight, and no more from now on.
    func takeAll() -> [Entry] {
        lock.withLock {
            dead = true
            lock.broadcast()
            let all = (0..<count).map { ring[slot($0)].taken() }
            head = 0
            count = 0
            return all
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
