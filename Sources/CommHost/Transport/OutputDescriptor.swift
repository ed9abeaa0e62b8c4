import Glibc
import Synchronization

/// The descriptor a transport writes its client's frames to, and the one
/// write on it that never blocks (what a reader thread uses to send the
/// replies to a run of frames itself, without waking the writer thread).
/// The raw non-blocking write calls of the transports are here.
///
/// - A socket: `send` with `MSG_DONTWAIT`.
/// - A pipe: `pwritev2` with `RWF_NOWAIT` (Linux 5.x and later honour it on
///   pipes): one system call, where `poll(POLLOUT)` and then `write` were
///   two. The descriptor's own flags are left alone: stdout's file
///   description may be shared with other processes, which `O_NONBLOCK`
///   would change. A reader hands it at most the pipe's capacity
///   (`F_GETPIPE_SZ`): more could not go without waiting, so it goes to the
///   writer thread whole, which copies it into the pipe while the reader
///   goes on with the next frames.
/// - Anything else (a file, a terminal), or a pipe whose kernel refuses
///   `RWF_NOWAIT`: `poll(POLLOUT)`, then at most `PIPE_BUF` bytes, which the
///   space `poll` promises always takes.
final class OutputDescriptor: Sendable {
    /// The descriptor; borrowed, never closed here.
    let rawValue: Int32
    private let kind: Kind
    /// The most a reader hands `writeWithoutBlocking` at once (more goes to
    /// the writer thread): 256 KiB for a socket, which takes what fits; a
    /// pipe's capacity; `PIPE_BUF` for a file or terminal.
    let directLimit: Int
    /// Cleared the first time a pipe refuses `RWF_NOWAIT` (a kernel older than
    /// the flag on pipes), so later writes go straight to `poll` and `write`.
    private let noWaitWorks: Atomic<Bool>

    private enum Kind {
        case socket, pipe, other
    }

    /// Looks at what `rawValue` is (`fstat`) to choose its write.
    init(_ rawValue: Int32) {
        self.rawValue = rawValue
        var info = stat()
        let type = fstat(rawValue, &info) == 0 ? info.st_mode & S_IFMT : 0
        kind = type == S_IFSOCK ? .socket : type == S_IFIFO && Self.pwritev2 != nil ? .pipe : .other
        noWaitWorks = Atomic(kind == .pipe)
        switch kind {
        case .socket: directLimit = 1 << 18
        case .pipe: directLimit = max(Int(PIPE_BUF), Int(fcntl(rawValue, Self.getPipeSize)))
        case .other: directLimit = Int(PIPE_BUF)
        }
    }

    /// Writes what fits now without blocking; returns the bytes written (0
    /// when nothing fits), or -1 on error (the writer thread then meets the
    /// error and ends the session).
    func writeWithoutBlocking(_ bytes: UnsafeRawBufferPointer) -> Int {
        switch kind {
        case .socket:
            while true {
                let n = send(rawValue, bytes.baseAddress!, bytes.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                if n >= 0 { return n }
                let failure = Errno.current
                if failure == .interrupted { continue }
                return failure == .wouldBlock ? 0 : -1
            }
        case .pipe where noWaitWorks.load(ordering: .relaxed):
            var piece = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), iov_len: bytes.count)
            while true {
                let n = Self.pwritev2!(rawValue, &piece, 1, -1, Self.noWait)
                if n >= 0 { return n }
                let failure = Errno.current
                if failure == .interrupted { continue }
                if failure == .wouldBlock { return 0 }
                guard failure.rawValue == EOPNOTSUPP || failure.rawValue == EINVAL else { return -1 }
                noWaitWorks.store(false, ordering: .relaxed)
                return pollThenWrite(bytes)
            }
        case .pipe, .other:
            return pollThenWrite(bytes)
        }
    }

    /// `poll(POLLOUT)` without waiting, then at most `PIPE_BUF` bytes: what a
    /// writable pipe always takes whole.
    private func pollThenWrite(_ bytes: UnsafeRawBufferPointer) -> Int {
        var descriptor = pollfd(fd: rawValue, events: Int16(POLLOUT), revents: 0)
        guard poll(&descriptor, 1, 0) == 1, descriptor.revents & Int16(POLLOUT) != 0 else { return 0 }
        while true {
            let n = Glibc.write(rawValue, bytes.baseAddress!, min(bytes.count, Int(PIPE_BUF)))
            if n >= 0 { return n }
            if Errno.current != .interrupted { return -1 }
        }
    }

    /// `F_GETPIPE_SZ` (linux/fcntl.h): a pipe's capacity in bytes.
    private static let getPipeSize: Int32 = 1032

    /// `RWF_NOWAIT` (linux/fs.h): fail with `EAGAIN` rather than wait.
    private static let noWait: Int32 = 0x8

    private typealias PWriteV2 = @convention(c) (Int32, UnsafePointer<iovec>?, Int32, off_t, Int32) -> Int

    /// glibc's `pwritev2` (since 2.26). Swift's Glibc module leaves out the
    /// GNU declarations (`_GNU_SOURCE` is not set for it), so it is looked up
    /// by name; nil where the C library lacks it.
    private static let pwritev2: PWriteV2? = {
        guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "pwritev2") else { return nil }
        return unsafeBitCast(symbol, to: PWriteV2.self)
    }()
}
