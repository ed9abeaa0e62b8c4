/// A value guarded by a pthread mutex: the same shape as
/// `Synchronization.Mutex` (`withLock`), but visible to ThreadSanitizer.
/// On Linux, `Mutex` waits on a futex inside the uninstrumented
/// Synchronization library when contended, so ThreadSanitizer sees no
/// ordering between the holders and reports every contended use as a data
/// race; pthread mutexes are intercepted. Use this for state that several
/// threads contend for; `Mutex` is fine where there is no contention.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: the value is only touched holding `lock`.
    private let lock = ConditionLock()
    // Kept in allocated storage rather than a stored property: the lock
    // already makes access exclusive, and a class property would pay a
    // dynamic exclusivity check on every `withLock` (hot: the comm table).
    private let value: UnsafeMutablePointer<Value>

    /// A lock guarding `value`.
    init(_ value: Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with the value, holding the lock.
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withLock { try body(&value.pointee) }
    }
}
