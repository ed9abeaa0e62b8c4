import Glibc

/// Per-thread state for the plugin callback running on this thread: which
/// library is being called (for `log`) and the error text it set with
/// `set_error`. One object per thread, made on first use, so entering a
/// callback costs a `pthread_getspecific` and two stores.
final class CallContext {
    /// The library whose callback is running, or nil outside callbacks.
    var library: PluginLibrary?
    /// Text from `set_error` during the current callback.
    var errorText: String?

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<CallContext>.fromOpaque(pointer).release() }
        }
        return key
    }()

    /// This thread's context.
    static var current: CallContext {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<CallContext>.fromOpaque(pointer).takeUnretainedValue()
        }
        let context = CallContext()
        pthread_setspecific(key, Unmanaged.passRetained(context).toOpaque())
        return context
    }
}
