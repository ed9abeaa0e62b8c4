/// A value guarded by a pthread mutex: the same shape as
/// `Synchronization.Mutex` (`withLock`), but visible to ThreadSanitizer.
/// On Linux, `Mutex` waits on a futex inside the uninstrumented
/// Synchronization library when contended, so ThreadSanitizer sees no
/// ordering between the holders and reports every contended use as a data
/// race; pthread mutexes are intercepted. Use this for state that several
/// threads contend for; `Mutex` is fine where there is no contention.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched holding `lock`.
    private let lock = ConditionLock()
    private var value: Value

    /// A lock guarding `value`.
    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with the value, holding the lock.
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withLock { try body(&value) }
    }
}
