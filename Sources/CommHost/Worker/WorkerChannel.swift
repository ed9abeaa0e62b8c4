import Glibc

/// One end of the host-worker socket pair: whole `WorkerMessage` frames out
/// (from any thread; one lock keeps frames whole) and in (one reader).
///
/// A thread may *hold* its frames (`hold`): they are kept, in order, and
/// written together by `flushHeld` or `release`, so a run of
/// pipelined requests (or of their sends and replies) costs one system call
/// instead of one each. A thread that holds frames must flush them before
/// it waits for anything the other side can only send after reading them.
final class WorkerChannel: HeldFrames, @unchecked Sendable {
    // @unchecked: `fd` is immutable; writes and `held` are guarded by
    // `writeLock`; `buffer`, `start` and `end` are only touched by the one
    // reading thread.

    /// The descriptor (a connected `AF_UNIX` `SOCK_STREAM` socket).
    let fd: Int32
    /// The largest frame body accepted: a peer that sends more is broken.
    let maxFrameBytes: Int
    private let writeLock = ConditionLock()
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0, end = 0
    /// What each thread holding its frames holds, by thread.
    private var held: [UInt: [UInt8]] = [:]
    /// Held bytes past which they are written at once.
    private static let heldLimit = 256 << 10

    /// Why a channel stopped.
    enum Failure: Error, CustomStringConvertible {
        /// The peer closed its end (or died).
        case closed
        /// A system call failed.
        case system(String, Int32)
        /// The peer sent a frame that does not decode.
        case malformed(String)

        var description: String {
            switch self {
            case .closed: "the other end closed the connection"
            case .system(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
            case .malformed(let reason): "malformed frame: \(reason)"
            }
        }
    }

    init(fd: Int32, maxFrameBytes: Int) {
        self.fd = fd
        self.maxFrameBytes = maxFrameBytes
    }

    /// Sends one message (held back when this thread holds its frames).
    /// Throws when the peer is gone.
    func send(_ message: WorkerMessage, id: UInt64) throws(Failure) {
        let frame = WorkerCodec.encode(message, id: id)
        let me = Self.thisThread
        writeLock.lock()
        defer { writeLock.unlock() }
        if held[me] != nil {
            held[me]!.append(contentsOf: frame)
            if held[me]!.count >= Self.heldLimit { try writeHeld(me) }
            return
        }
        try write(frame)
    }

    /// From now on this thread's frames are held back until `flushHeld` or
    /// `release`. Each thread holds its own; they are written whole, so
    /// frames of different threads never mix.
    func hold() {
        let me = Self.thisThread
        writeLock.withLock {
            if held[me] == nil { held[me] = [] }
        }
    }

    /// Writes what this thread holds (it goes on holding).
    func flushHeld() throws(Failure) {
        let me = Self.thisThread
        writeLock.lock()
        defer { writeLock.unlock() }
        try writeHeld(me)
    }

    /// Writes what this thread holds and stops holding.
    func release() throws(Failure) {
        let me = Self.thisThread
        writeLock.lock()
        defer { writeLock.unlock() }
        guard let frames = held.removeValue(forKey: me), !frames.isEmpty else { return }
        try write(frames)
    }

    /// `release`, for `CallContext`; a peer that is gone is seen by the reader.
    func releaseHeldFrames() {
        try? release()
    }

    private static var thisThread: UInt { UInt(bitPattern: Int(bitPattern: pthread_self())) }

    /// Writes what `thread` holds; call holding `writeLock`.
    private func writeHeld(_ thread: UInt) throws(Failure) {
        guard let frames = held[thread], !frames.isEmpty else { return }
        held[thread]!.removeAll(keepingCapacity: true)
        try write(frames)
    }

    /// Call holding `writeLock`.
    private func write(_ frame: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < frame.count {
            let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, frame.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == EPIPE || errno == ECONNRESET ? .closed : .system("send", errno)
            }
            offset += n
        }
    }

    /// Reads the next message; blocks until one is whole. Only one thread may call it.
    func receive() throws(Failure) -> (id: UInt64, message: WorkerMessage) {
        try fill(4)
        let length = buffer.withUnsafeBytes { raw in (0..<4).reduce(0) { $0 | Int(raw[start + $1]) << (8 * $1) } }
        start += 4
        guard length >= 9, length <= maxFrameBytes else { throw .malformed("frame length \(length) is outside 9...\(maxFrameBytes)") }
        try fill(length)
        let bodyStart = start
        start += length
        // Decoded where it lies in the read buffer: no copy of the frame first.
        let decoded = buffer.withUnsafeBytes { raw in
            Result { () throws(WorkerCodec.Malformed) in try WorkerCodec.decode(UnsafeRawBufferPointer(rebasing: raw[bodyStart..<(bodyStart + length)])) }
        }
        switch decoded {
        case .success(let frame): return frame
        case .failure(let error): throw .malformed(error.description)
        }
    }

    /// Shuts both directions down, waking a blocked reader.
    func shutdownBoth() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Reads until at least `count` unread bytes are buffered (from `start`).
    private func fill(_ count: Int) throws(Failure) {
        while end - start < count {
            if start > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    if end > start { raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: end - start) }
                }
                end -= start
                start = 0
            }
            if buffer.count - end < count - (end - start) || buffer.count == end {
                buffer.append(contentsOf: [UInt8](repeating: 0, count: max(count, buffer.count)))
            }
            let n = buffer.withUnsafeMutableBytes { raw in Glibc.read(fd, raw.baseAddress! + end, raw.count - end) }
            if n == 0 { throw .closed }
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == ECONNRESET ? .closed : .system("read", errno)
            }
            end += n
        }
    }
}
