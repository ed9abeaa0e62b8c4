/// A value guarded by a pthread mutex: the same shape as
/// `Synchronization.Mutex` (`withLock`), but visible to ThreadSanitizer.
/// On Linux, `Mutex` waits on a futex inside the uninstrumented
/// Synchronization library when contended, so ThreadSanitizer sees no
/// ordering between the holders and reports every contended use as a data
/// race; pthread mutexes are intercepted.
///
/// The host has two lock types: this one for a value on its own, and
/// `ConditionLock` where a thread must sleep until another hands it work,
/// or where one lock guards several properties of its owner. It does not
/// use `Mutex`. Each stored lock says what it guards.
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
