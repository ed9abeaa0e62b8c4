import Glibc

/// A failed system call's `errno` value: the one error type every wrapper of
/// a system call in the host throws or keeps (files, sockets, inotify,
/// threads, the worker's channel, `setrlimit`), shaped like swift-system's
/// `Errno`. Its description is the system's text for the value
/// (`strerror(3)`).
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    /// The C `errno` value.
    public let rawValue: CInt

    /// The error with C value `rawValue`.
    public init(rawValue: CInt) {
        self.rawValue = rawValue
    }

    /// The calling thread's `errno` now: read it right after the call that failed.
    public static var current: Errno { Errno(rawValue: Glibc.errno) }

    /// `strerror(3)`: the system's text for the value, e.g. "No such file or directory".
    public var description: String { String(cString: strerror(rawValue)) }

    /// `EINTR`: a signal interrupted the call; retry it.
    public static var interrupted: Errno { Errno(rawValue: EINTR) }
    /// `EAGAIN` (`EWOULDBLOCK` on Linux): the call would block.
    public static var wouldBlock: Errno { Errno(rawValue: EAGAIN) }
    /// `EIO`: an input/output error; also what a write that wrote nothing reports.
    public static var ioError: Errno { Errno(rawValue: EIO) }
    /// `ENOENT`: no such file or directory.
    public static var noSuchFileOrDirectory: Errno { Errno(rawValue: ENOENT) }
    /// `EEXIST`: the file exists.
    public static var fileExists: Errno { Errno(rawValue: EEXIST) }
    /// `EPIPE`: the reading end is closed.
    public static var brokenPipe: Errno { Errno(rawValue: EPIPE) }
    /// `ECONNRESET`: the peer reset the connection.
    public static var connectionReset: Errno { Errno(rawValue: ECONNRESET) }
    /// `ECONNREFUSED`: nothing listens at the address.
    public static var connectionRefused: Errno { Errno(rawValue: ECONNREFUSED) }
    /// `EADDRINUSE`: the address is already in use.
    public static var addressInUse: Errno { Errno(rawValue: EADDRINUSE) }
    /// `ECONNABORTED`: a connection was aborted before it was accepted.
    public static var connectionAbort: Errno { Errno(rawValue: ECONNABORTED) }
}
