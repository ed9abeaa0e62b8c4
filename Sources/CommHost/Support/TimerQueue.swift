import Glibc

/// One thread that runs closures at deadlines on the monotonic clock: the
/// clock behind plugin timers. A closure should only hand work elsewhere
/// (it runs on the timer thread, so a slow one delays the others).
final class TimerQueue: @unchecked Sendable {
    // @unchecked: `entries`, `nextID` and `started` are only touched holding `lock`.

    /// The process's queue, started on first use.
    static let shared = TimerQueue()

    private struct Entry {
        var deadline: UInt64
        var id: UInt64
        var fire: @Sendable () -> Void
    }

    /// Guards `entries` and `nextID`; the timer thread sleeps on it until the soonest deadline.
    private let lock = ConditionLock()
    /// Kept sorted by deadline, soonest last (timers are few; removal is by id).
    private var entries: [Entry] = []
    private var nextID: UInt64 = 1
    private var started = false

    /// Runs `fire` on the timer thread once `nanoseconds` have passed.
    /// Returns an id for `cancel`.
    @discardableResult
    func schedule(afterNanoseconds nanoseconds: UInt64, _ fire: @escaping @Sendable () -> Void) -> UInt64 {
        let deadline = MonotonicClock.nanoseconds() &+ min(nanoseconds, UInt64(Int64.max) / 2)
        return lock.withLock {
            // A thread that cannot start now (out of threads) is tried again on the next schedule.
            if !started {
                started = (try? HostThread.start(name: "commhost-timers") { [self] in run() }) != nil
            }
            let id = nextID
            nextID += 1
            let index = entries.firstIndex { $0.deadline <= deadline } ?? entries.count
            entries.insert(Entry(deadline: deadline, id: id, fire: fire), at: index)
            lock.broadcast()
            return id
        }
    }

    /// Removes a closure that has not fired yet; false when it already has (or never was).
    @discardableResult
    func cancel(_ id: UInt64) -> Bool {
        lock.withLock {
            guard let index = entries.firstIndex(where: { $0.id == id }) else { return false }
            entries.remove(at: index)
            return true
        }
    }

    /// Waits holding only the soonest deadline, never an entry: a cancelled
    /// entry's closure (and the task and session it holds) is freed by
    /// `cancel` at once, not when this thread next wakes.
    private func run() {
        lock.lock()
        while true {
            guard let deadline = entries.last?.deadline else {
                lock.wait()
                continue
            }
            let now = MonotonicClock.nanoseconds()
            if deadline > now {
                lock.wait(seconds: Double(deadline - now) / 1e9)
                continue
            }
            let fire = entries.removeLast().fire
            lock.unlock()
            fire()
            lock.lock()
        }
    }
}
