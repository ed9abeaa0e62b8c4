import Glibc

/// A mutex with a condition variable (`pthread_mutex_t` + `pthread_cond_t`),
/// for the places a thread must sleep until another one hands it work, and
/// for a lock that guards several properties of its owner (a value on its
/// own goes in `Locked`, built on this). pthread-based, so ThreadSanitizer
/// sees the ordering it gives.
final class ConditionLock: @unchecked Sendable {
    // @unchecked: the pthread objects are the synchronization themselves.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// `pthread_mutex_lock`.
    func lock() { pthread_mutex_lock(mutex) }

    /// `pthread_mutex_trylock`; true when the lock was taken.
    func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }

    /// `pthread_mutex_unlock`.
    func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` holding the lock.
    @inline(__always)
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// `pthread_cond_wait`: sleeps until signalled. Call holding the lock.
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Sleeps until signalled or `seconds` pass. Call holding the lock.
    func wait(seconds: Double) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 + seconds
        var deadline = timespec(tv_sec: Int(total), tv_nsec: Int((total - total.rounded(.down)) * 1e9))
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    /// `pthread_cond_broadcast`: wakes every waiter.
    func broadcast() { pthread_cond_broadcast(condition) }
}
