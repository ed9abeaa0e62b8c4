import Glibc

/// Which session's serialized context the current thread is running, if
/// any: the kit marks the thread while it runs a callback, task or timer for
/// a session, so that what may only happen there (opening a comm, reading
/// session state) can say so when called from elsewhere.
enum SerializedContext {
    /// The thread-specific slot holding the session handle being served.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// Runs `body` marked as being on `session`'s serialized context, then
    /// restores the previous mark.
    static func run<R>(on session: OpaquePointer?, _ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, session.map { UnsafeRawPointer($0) })
        defer { pthread_setspecific(key, previous) }
        return try body()
    }

    /// True while this thread runs a callback, task or timer of `session`.
    static func isCurrent(_ session: OpaquePointer) -> Bool {
        pthread_getspecific(key) == UnsafeMutableRawPointer(session)
    }
}
