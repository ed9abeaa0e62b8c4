import Glibc

/// Per-thread state of the worker: the id of the host request this thread
/// is running (0 on the plugin's own threads), which tags the plugin's host
/// calls (`hostCall.during`), and the `set_error` text of the callback
/// running here, sent back in the request's reply. One object per thread,
/// made on first use, like the host's `CallContext`.
final class WorkerCallContext {
    /// The request being served on this thread, or 0.
    var request: UInt64 = 0
    /// Whether that request is a pipelined `message` (its sends are answered here).
    var pipelined = false
    /// Text from `set_error` during the current callback.
    var errorText: String?
    /// The data and metadata bytes of the pipelined message being served:
    /// a send that hands back these very bytes (an echo) was validated by
    /// the host when they arrived, and is not validated again here.
    var requestData = UnsafeRawBufferPointer(start: nil, count: 0)
    var requestMetadata = UnsafeRawBufferPointer(start: nil, count: 0)

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<WorkerCallContext>.fromOpaque(pointer).release() }
        }
        return key
    }()

    /// This thread's context.
    static var current: WorkerCallContext {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<WorkerCallContext>.fromOpaque(pointer).takeUnretainedValue()
        }
        let context = WorkerCallContext()
        pthread_setspecific(key, Unmanaged.passRetained(context).toOpaque())
        return context
    }

    /// Runs `body` as the callback of request `id`: tagged with it, with no
    /// error text at the start; returns what `body` returned and the text
    /// the plugin set. Restores the previous tag afterwards.
    static func serving<R>(_ id: UInt64, pipelined: Bool = false, payload: PayloadView? = nil,
                           _ body: () -> R) -> (result: R, errorText: String?) {
        let context = current
        let outerRequest = context.request, outerText = context.errorText, outerPipelined = context.pipelined
        let outerData = context.requestData, outerMetadata = context.requestMetadata
        context.request = id
        context.errorText = nil
        context.pipelined = pipelined
        context.requestData = payload?.data ?? UnsafeRawBufferPointer(start: nil, count: 0)
        context.requestMetadata = payload?.metadata ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let result = body()
        let text = context.errorText
        context.request = outerRequest
        context.errorText = outerText
        context.pipelined = outerPipelined
        context.requestData = outerData
        context.requestMetadata = outerMetadata
        return (result, text)
    }
}
