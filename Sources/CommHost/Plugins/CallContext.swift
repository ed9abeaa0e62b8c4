import Glibc

/// Per-thread state for the plugin callback running on this thread: the
/// error text it set with `set_error`, and what a pipelined comm_msg to a
/// worker needs. (Which library calls a host function comes from its
/// table's `host_data`, not from here.) One object per thread, made on
/// first use, so entering a callback costs a `pthread_getspecific` and a store.
final class CallContext {
    /// Text from `set_error` during the current callback.
    var errorText: String?
    /// Offered by a session to the comm_msg call it is making, for a proxy
    /// that sends it to a worker without waiting (it takes and clears it).
    var pipelineOffer: PipelinedCall?
    /// On a worker's reader thread: the pipelined callback whose host call
    /// is running here, so it gets that callback's parent header.
    var pipelinedCall: PipelinedCall?
    /// Set while a `send` the worker has already answered `COMMHOST_OK` runs:
    /// the session admits it past the high-water mark (nothing accepted is
    /// lost) and sets `admittedPastMark`, so the proxy tells the worker.
    var sendAlreadyAnswered = false
    var admittedPastMark = false
    /// Above 0 while this thread handles a run of frames (`Session.handleBatch`):
    /// requests pipelined to workers meanwhile are held back and written
    /// together when the run ends (or before this thread waits for a worker).
    /// Only its own thread touches a context, so this and `held` skip Swift's
    /// run-time exclusivity check (a `swift_beginAccess` on every run of frames).
    @exclusivity(unchecked) var batchDepth = 0
    /// The handle (token) of the comm whose open or message callback is
    /// running on this thread, 0 if none, and that comm, unretained: the
    /// host holds the comm until its close callback, which never runs
    /// during one of its other callbacks. A host function called with this
    /// very token (a plugin's send from its message callback) takes the comm
    /// from here instead of the handle table (`HostAPI`): a token equal to
    /// a comm the host holds is valid by definition, so the check of ABI
    /// requirement 14 holds, at no lock and no reference count.
    var callCommToken: UInt = 0
    var callComm: Unmanaged<CommHandle>?
    /// The channels holding this thread's frames.
    @exclusivity(unchecked) private var held: [any HeldFrames] = []

    /// `frames` holds this thread's frames until `releaseHeldFrames`.
    func holding(_ frames: any HeldFrames) {
        // Usually the one added last (a run of frames pipelines to one worker).
        if let last = held.last, last === frames { return }
        if !held.contains(where: { $0 === frames }) { held.append(frames) }
    }

    /// Writes every frame this thread holds back and stops holding: at the
    /// end of a run, and before any wait for a worker (which may be waiting
    /// for exactly those frames).
    func releaseHeldFrames() {
        guard !held.isEmpty else { return }
        let list = held
        held.removeAll()
        for frames in list { frames.releaseHeldFrames() }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<CallContext>.fromOpaque(pointer).release() }
        }
        return key
    }()

    /// This thread's context.
    static var current: CallContext {
        currentUnretained.takeUnretainedValue()
    }

    /// This thread's context, without a reference count: the thread's key
    /// holds it until the thread ends. For the per-message paths, with
    /// `_withUnsafeGuaranteedRef` (`current` costs a retain and a release).
    @inline(__always)
    static var currentUnretained: Unmanaged<CallContext> {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<CallContext>.fromOpaque(pointer)
        }
        return makeCurrent()
    }

    private static func makeCurrent() -> Unmanaged<CallContext> {
        let context = Unmanaged.passRetained(CallContext())
        pthread_setspecific(key, context.toOpaque())
        return context
    }
}

/// A channel that can hold a thread's frames back (a worker's socket pair).
protocol HeldFrames: AnyObject {
    /// Writes what the calling thread holds and stops holding.
    func releaseHeldFrames()
}
