import Synchronization

/// The bytes a session has issued toward its client and not yet written,
/// and the hand-off to whoever writes them: the transport's writer thread
/// (`takeOutputToWrite`/`finishedWriting`), or the thread that handled a run
/// of frames writing them itself at the end of the run (`flushAfterBatch`).
/// As a SwiftNIO channel owns its outbound buffer and its flush, this owns
/// the buffering; the session only appends frames (holding `lock()`) and
/// decides what a full queue means for the plugins (its backpressure).
///
/// Ends once `end()` is called or more than the owner's bound is queued
/// (`endEarly`); what was queued before the end is still taken.
final class OutboundQueue: @unchecked Sendable {
    // @unchecked: every mutable property is guarded by `condition`.

    /// Guards every property below, and wakes the writer. The session that
    /// appends also keeps under it what must change in step with what is
    /// queued (its encoder, which comms are closed, its backpressure).
    /// The properties every frame touches skip Swift's run-time exclusivity
    /// check (`@exclusivity(unchecked)`, about 250 instructions a message):
    /// the lock already makes each access exclusive.
    private let condition = ConditionLock()
    /// Frames issued and not yet taken by a writer; the owner appends to it holding the lock.
    @exclusivity(unchecked) var pending: [UInt8] = []
    /// Bytes taken from `pending` by a writer and not yet written.
    @exclusivity(unchecked) private var writingBytes = 0
    /// Set when the queue ends; no frame is appended after it.
    @exclusivity(unchecked) private(set) var ended = false {
        didSet { endedFlag.store(ended, ordering: .releasing) }
    }
    /// `ended`, readable without the lock (`isEnded`, asked after every frame a reader hands on).
    private let endedFlag = Atomic<Bool>(false)
    /// Why the queue ended early (its owner's bound exceeded), if it did.
    private var endReason: String?
    private var onEarlyEnd: (@Sendable () -> Void)?
    /// Nesting depth of batches; while above 0 appends do not wake the writer.
    @exclusivity(unchecked) private var wakeupsHeld = 0
    /// A thread is writing output (the writer, or a reader writing directly), so no other may.
    @exclusivity(unchecked) private var writing = false
    /// The transport's non-blocking write and how much it takes at once
    /// (`setDirectWriter`), for output made on a worker's reader thread.
    private var directWriter: (limit: Int, write: @Sendable (UnsafeRawBufferPointer) -> Int)?
    /// What a direct write took from `pending`; only the thread holding `writing` touches it
    /// (so, as for the properties above, Swift's run-time exclusivity check is skipped).
    @exclusivity(unchecked) private var directBuffer: [UInt8] = []
    /// Told, holding the lock, each time a writer has written. Not
    /// retained, and not `weak`: the owner (the session) holds this queue in
    /// a private property and every call into the queue comes through the
    /// owner, so the owner outlives each use; a `weak` reference gave the
    /// session a side table, which sent every retain and release of it
    /// through the runtime's slow path (about 150 instructions a message),
    /// and cost a `swift_weakLoadStrong`, a retain and a release on every
    /// direct write.
    unowned(unsafe) var owner: (any OutboundQueueOwner)?

    /// Takes the lock that guards the queue.
    @inline(__always)
    func lock() { condition.lock() }

    /// Releases the lock taken with `lock()`.
    @inline(__always)
    func unlock() { condition.unlock() }

    /// Runs `body` holding the lock.
    @inline(__always)
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        try condition.withLock(body)
    }

    /// Bytes queued toward the client: waiting, or taken by a writer and not
    /// yet written. Call holding the lock.
    @inline(__always)
    var queuedBytes: Int { pending.count + writingBytes }

    /// Call holding the lock after each append: wakes the writer unless a
    /// batch holds wake-ups.
    @inline(__always)
    func appended() {
        if wakeupsHeld == 0 || ended { condition.broadcast() }
    }

    /// Ends the queue early with `reason` (its owner's bound exceeded) and
    /// runs what `whenEndedEarly` set. Call holding the lock.
    func endEarly(reason: String) {
        ended = true
        endReason = reason
        onEarlyEnd?()
        onEarlyEnd = nil
    }

    /// Ends the queue: nothing more is appended, and the writer leaves once
    /// it has taken what is queued. Call holding the lock.
    func end() {
        ended = true
        onEarlyEnd = nil
        directWriter = nil
        condition.broadcast()
    }

    /// True once the queue has ended.
    var isEnded: Bool { endedFlag.load(ordering: .acquiring) }

    /// Why the queue ended early, if it did.
    var earlyEndReason: String? { withLock { endReason } }

    /// Sets what to do when the queue ends early; `body` runs once, holding
    /// the lock. Runs at once if the queue already ended early.
    func whenEndedEarly(_ body: @escaping @Sendable () -> Void) {
        let now = withLock { () -> Bool in
            guard endReason == nil else { return true }
            onEarlyEnd = body
            return false
        }
        if now { body() }
    }

    /// Lets threads other than the transport's reader write what they add
    /// the way a batch does (`beginDirectDelivery`). Dropped at `end()`.
    func setDirectWriter(limit: Int, write: @escaping @Sendable (UnsafeRawBufferPointer) -> Int) {
        withLock { directWriter = (limit, write) }
    }

    /// Holds wake-ups of the writer until the matching `flushAfterBatch`.
    func holdWakeups() {
        withLock { wakeupsHeld += 1 }
    }

    /// Holds wake-ups as `holdWakeups` when there is a direct writer (to be
    /// ended with `flushToDirectWriter`); false, holding nothing, when there is none.
    func beginDirectDelivery() -> Bool {
        withLock { () -> Bool in
            guard directWriter != nil else { return false }
            wakeupsHeld += 1
            return true
        }
    }

    /// Ends what `beginDirectDelivery` began, writing with the direct writer.
    func flushToDirectWriter() {
        let writer = withLock { directWriter }
        flushAfterBatch(directLimit: writer?.limit ?? 0, write: writer?.write ?? { _ in 0 })
    }

    /// Ends a batch begun with `holdWakeups`: when it is the outermost, sends
    /// what was queued with `write` on this thread when no other thread is
    /// writing and it is at most `directLimit` bytes, else wakes the writer
    /// thread once. `write` must not block: it returns how many bytes it
    /// wrote (0 when the client cannot take more now, -1 on error); the rest
    /// goes to the writer thread, ahead of anything appended since.
    func flushAfterBatch(directLimit: Int, write: (UnsafeRawBufferPointer) -> Int) {
        condition.lock()
        wakeupsHeld -= 1
        guard wakeupsHeld == 0 else { return condition.unlock() }
        guard !writing, !ended, !pending.isEmpty, pending.count <= directLimit else {
            // The writer waits for output (or the end); nothing new, no wake-up.
            if !pending.isEmpty || ended { condition.broadcast() }
            return condition.unlock()
        }
        writing = true
        swap(&directBuffer, &pending)
        writingBytes = directBuffer.count
        condition.unlock()

        let written = directBuffer.withUnsafeBytes(write)
        condition.lock()
        if written < directBuffer.count {
            pending.insert(contentsOf: directBuffer[max(written, 0)...], at: 0)
        }
        directBuffer.removeAll(keepingCapacity: true)
        writing = false
        writingBytes = 0
        owner?.outboundQueueWrote()
        if !pending.isEmpty || ended { condition.broadcast() }
        condition.unlock()
    }

    /// Takes everything queued so far into `buffer` (replacing its
    /// contents). With `wait`, sleeps until there is output or the queue
    /// has ended. Returns false once the queue has ended and all its
    /// output has been taken.
    func takeOutput(into buffer: inout [UInt8], wait: Bool) -> Bool {
        buffer.removeAll(keepingCapacity: true)
        condition.lock()
        defer { condition.unlock() }
        while wait && pending.isEmpty && !ended { condition.wait() }
        swap(&buffer, &pending)
        return !(ended && buffer.isEmpty)
    }

    /// For a transport's writer thread: waits until there is output and no
    /// other thread is writing, takes it into `buffer` (replacing its
    /// contents) and makes this thread the writer until `finishedWriting()`.
    /// Returns false, taking nothing, once the queue has ended and all its
    /// output has been written.
    func takeOutputToWrite(into buffer: inout [UInt8]) -> Bool {
        buffer.removeAll(keepingCapacity: true)
        condition.lock()
        defer { condition.unlock() }
        while (pending.isEmpty || writing) && !(ended && pending.isEmpty && !writing) { condition.wait() }
        guard !pending.isEmpty else { return false }
        writing = true
        swap(&buffer, &pending)
        writingBytes = buffer.count
        return true
    }

    /// Ends the writer's turn taken with `takeOutputToWrite`.
    func finishedWriting() {
        condition.withLock {
            writing = false
            writingBytes = 0
            owner?.outboundQueueWrote()
            condition.broadcast()
        }
    }
}

/// Who appends to an `OutboundQueue` and accounts for how full it is.
protocol OutboundQueueOwner: AnyObject {
    /// Called holding the queue's lock each time a writer has written.
    func outboundQueueWrote()
}
