import Glibc

/// One end of the host-worker socket pair: whole `WorkerMessage` frames out
/// (from any thread; one lock keeps frames whole) and in (one reader at a
/// time: the host's reader thread, or the worker's lanes taking turns).
///
/// A thread may *hold* its frames (`hold`): they are kept, in order, and
/// written together by `flushHeld` or `release`, so a run of
/// pipelined requests (or of their sends and replies) costs one system call
/// instead of one each. A thread that holds frames must flush them before
/// it waits for anything the other side can only send after reading them.
final class WorkerChannel: HeldFrames, @unchecked Sendable {
    // @unchecked: `fd` and `heldKey` are immutable; `scratch`, `heldOwners`
    // and the socket's write side are guarded by `writeLock`; a thread's
    // held frames (its `heldKey` slot) are touched only by that thread
    // (and written holding `writeLock`); `readBuffer` and `start`
    // only by the thread reading (one at a time).

    /// The descriptor (a connected `AF_UNIX` `SOCK_STREAM` socket).
    let fd: Int32
    /// The largest frame body accepted: a peer that sends more is broken.
    let maxFrameBytes: Int
    /// Held while a frame is written (and guards `scratch`), so frames from several threads never interleave.
    private let writeLock = ConditionLock()
    /// Where a frame sent without holding is encoded before it is written.
    private let scratch = FrameBuffer()
    /// Each thread's held frames, in a slot of its own (`nil`: not holding).
    private let heldKey: pthread_key_t
    /// Every thread's held frames, kept (and freed) with the channel.
    private var heldOwners: [Held] = []
    private let readBuffer = FrameBuffer(capacity: 64 << 10)
    /// Where the unread bytes of `readBuffer` begin (they end at its count).
    private var start = 0
    /// Held bytes past which they are written at once.
    private static let heldLimit = 256 << 10

    /// Why a channel stopped.
    enum Failure: Error, CustomStringConvertible {
        /// The peer closed its end (or died).
        case closed
        /// A system call failed.
        case system(String, Errno)
        /// The peer sent a frame that does not decode.
        case malformed(String)

        var description: String {
            switch self {
            case .closed: "the other end closed the connection"
            case .system(let call, let failure): "\(call) failed: \(failure)"
            case .malformed(let reason): "malformed frame: \(reason)"
            }
        }
    }

    init(fd: Int32, maxFrameBytes: Int) {
        self.fd = fd
        self.maxFrameBytes = maxFrameBytes
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        heldKey = key
    }

    deinit {
        pthread_key_delete(heldKey)
    }

    /// Sends one frame (held back when this thread holds its frames).
    /// Throws when the peer is gone.
    func send(_ frame: some WorkerFrame, id: UInt64) throws(Failure) {
        if let held = heldFrames {
            WorkerCodec.append(frame, id: id, into: held.buffer)
            if held.buffer.count >= Self.heldLimit { try flushHeld() }
            return
        }
        writeLock.lock()
        defer { writeLock.unlock() }
        scratch.removeAll()
        WorkerCodec.append(frame, id: id, into: scratch)
        try write(scratch.bytes)
    }

    /// This thread's held frames, or nil when it does not hold them.
    private final class Held {
        let buffer = FrameBuffer()
        var holding = false
    }

    private var heldFrames: Held? {
        guard let slot = pthread_getspecific(heldKey) else { return nil }
        let held = Unmanaged<Held>.fromOpaque(slot).takeUnretainedValue()
        return held.holding ? held : nil
    }

    /// From now on this thread's frames are held back until `flushHeld` or
    /// `release`. Each thread holds its own; they are written whole, so
    /// frames of different threads never mix.
    func hold() {
        if let slot = pthread_getspecific(heldKey) {
            Unmanaged<Held>.fromOpaque(slot).takeUnretainedValue().holding = true
            return
        }
        let held = Held()
        held.holding = true
        // The channel keeps every thread's buffer (the slot does not retain it).
        writeLock.withLock { heldOwners.append(held) }
        pthread_setspecific(heldKey, Unmanaged.passUnretained(held).toOpaque())
    }

    /// Writes what this thread holds (it goes on holding).
    func flushHeld() throws(Failure) {
        guard let held = heldFrames, !held.buffer.isEmpty else { return }
        writeLock.lock()
        defer {
            held.buffer.removeAll()
            writeLock.unlock()
        }
        try write(held.buffer.bytes)
    }

    /// Writes what this thread holds and stops holding.
    func release() throws(Failure) {
        guard let held = heldFrames else { return }
        held.holding = false
        guard !held.buffer.isEmpty else { return }
        writeLock.lock()
        defer {
            held.buffer.removeAll()
            writeLock.unlock()
        }
        try write(held.buffer.bytes)
    }

    /// `release`, for `CallContext`; a peer that is gone is seen by the reader.
    func releaseHeldFrames() {
        try? release()
    }

    /// Call holding `writeLock`.
    private func write(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                let failure = Errno.current
                if failure == .interrupted { continue }
                throw failure == .brokenPipe || failure == .connectionReset ? .closed : .system("send", failure)
            }
            offset += n
        }
    }

    /// Reads the next message; blocks until one is whole. One thread at a time may call it.
    func receive() throws(Failure) -> (id: UInt64, message: WorkerMessage) {
        let body = try receiveBody()
        switch Result(catching: { () throws(WorkerCodec.Malformed) in try WorkerCodec.decode(body) }) {
        case .success(let frame): return frame
        case .failure(let error): throw .malformed(error.description)
        }
    }

    /// Reads the next frame and returns its body (what follows the length
    /// prefix) where it lies in the read buffer: valid until the next
    /// `receive` or `receiveBody`. One thread at a time may call it.
    func receiveBody() throws(Failure) -> UnsafeRawBufferPointer {
        try fill(4)
        let length = Int(UInt32(littleEndian: readBuffer.base.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
        start += 4
        guard length >= 9, length <= maxFrameBytes else { throw .malformed("frame length \(length) is outside 9...\(maxFrameBytes)") }
        try fill(length)
        let body = UnsafeRawBufferPointer(start: readBuffer.base + start, count: length)
        start += length
        return body
    }

    /// Whether a whole frame is read already: the next `receive` will not
    /// block. Only the thread reading may ask.
    var hasWholeFrame: Bool {
        guard readBuffer.count - start >= 4 else { return false }
        let length = Int(UInt32(littleEndian: readBuffer.base.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
        return readBuffer.count - start - 4 >= length
    }

    /// Shuts both directions down, waking a blocked reader.
    func shutdownBoth() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Reads until at least `count` unread bytes are buffered (from `start`).
    private func fill(_ count: Int) throws(Failure) {
        while readBuffer.count - start < count {
            if start > 0 {
                readBuffer.removeFirst(start)
                start = 0
            }
            if readBuffer.capacity - readBuffer.count < count || readBuffer.capacity == readBuffer.count {
                _ = readBuffer.reserve(max(count, readBuffer.capacity))
            }
            let n = Glibc.read(fd, readBuffer.base + readBuffer.count, readBuffer.capacity - readBuffer.count)
            if n == 0 { throw .closed }
            if n < 0 {
                let failure = Errno.current
                if failure == .interrupted { continue }
                throw failure == .connectionReset ? .closed : .system("read", failure)
            }
            readBuffer.commit(n)
        }
    }
}
