import Synchronization

/// A value shared between client threads, behind a mutex.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<R>(_ body: (inout sending Value) -> sending R) -> R {
        mutex.withLock(body)
    }

    var value: Value { mutex.withLock { $0 } }
}
