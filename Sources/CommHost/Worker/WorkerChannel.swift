import Glibc

/// One end of the host-worker socket pair: whole `WorkerMessage` frames out
/// (from any thread; one lock keeps frames whole) and in (one reader).
final class WorkerChannel: @unchecked Sendable {
    // @unchecked: `fd` is immutable; writes are serialized by `writeLock`;
    // `buffer`, `start` and `end` are only touched by the one reading thread.

    /// The descriptor (a connected `AF_UNIX` `SOCK_STREAM` socket).
    let fd: Int32
    /// The largest frame body accepted: a peer that sends more is broken.
    let maxFrameBytes: Int
    private let writeLock = ConditionLock()
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0, end = 0

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

    /// Sends one message. Throws when the peer is gone.
    func send(_ message: WorkerMessage, id: UInt64) throws(Failure) {
        let frame = WorkerCodec.encode(message, id: id)
        writeLock.lock()
        defer { writeLock.unlock() }
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
        let length = Int(try readExactly(4).withUnsafeBytes { raw in (0..<4).reduce(UInt32(0)) { $0 | UInt32(raw[$1]) << (8 * $1) } })
        guard length >= 9, length <= maxFrameBytes else { throw .malformed("frame length \(length) is outside 9...\(maxFrameBytes)") }
        let body = try readExactly(length)
        do {
            return try body.withUnsafeBytes { raw in try WorkerCodec.decode(raw) }
        } catch let error as WorkerCodec.Malformed {
            throw .malformed(error.description)
        } catch {
            throw .malformed("\(error)")
        }
    }

    /// Shuts both directions down, waking a blocked reader.
    func shutdownBoth() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    private func readExactly(_ count: Int) throws(Failure) -> [UInt8] {
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
        defer { start += count }
        return Array(buffer[start..<(start + count)])
    }
}
