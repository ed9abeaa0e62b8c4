import Glibc

/// A Unix-domain stream socket descriptor (`AF_UNIX`, `SOCK_STREAM`): the
/// only place commhost makes socket calls. A thin typed wrapper, like
/// swift-system's `FileDescriptor`: it holds the descriptor and never closes
/// it behind the caller's back; every failure is a ``SocketError`` naming the
/// call, the path and the ``Errno``.
public struct UnixSocket: RawRepresentable, Hashable, Sendable {
    /// The descriptor.
    public let rawValue: Int32

    /// Wraps an open socket descriptor.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// Longest path a socket address holds, in bytes (`sizeof(sun_path) - 1`).
    public static let maxPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// `socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)`: a new, unconnected socket.
    public static func stream() throws(SocketError) -> UnixSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", path: nil, errno: .current) }
        return UnixSocket(rawValue: fd)
    }

    /// `bind(2)`: creates the socket file at `path` (mode 0777 less the umask).
    public func bind(to path: String) throws(SocketError) {
        let result = try Self.withAddress(path) { address, length in Glibc.bind(rawValue, address, length) }
        guard result == 0 else { throw .system(call: "bind", path: path, errno: .current) }
    }

    /// `listen(2)` with room for `backlog` connections waiting to be accepted.
    public func listen(backlog: Int32) throws(SocketError) {
        guard Glibc.listen(rawValue, backlog) == 0 else { throw .system(call: "listen", path: nil, errno: .current) }
    }

    /// `accept(2)`, retried on `EINTR`, then `FD_CLOEXEC`: the next connection.
    /// (`accept4` is not visible through the Glibc module; commhost never
    /// forks, so setting the flag afterwards leaves no window that matters.)
    public func accept() throws(SocketError) -> UnixSocket {
        while true {
            let fd = Glibc.accept(rawValue, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return UnixSocket(rawValue: fd)
            }
            let failure = Errno.current
            if failure != .interrupted { throw .system(call: "accept", path: nil, errno: failure) }
        }
    }

    /// `connect(2)` to the socket at `path`, retried on `EINTR`.
    public func connect(to path: String) throws(SocketError) {
        while true {
            let result = try Self.withAddress(path) { address, length in Glibc.connect(rawValue, address, length) }
            if result == 0 { return }
            let failure = Errno.current
            if failure != .interrupted { throw .system(call: "connect", path: path, errno: failure) }
        }
    }

    /// Which directions `shutdown(2)` closes.
    public enum Direction: Sendable {
        /// `SHUT_RD`: reads return end of stream (a blocked `read` wakes).
        case read
        /// `SHUT_RDWR`: reads end and writes fail (a blocked `write` wakes with `EPIPE`).
        case both

        var cValue: Int32 {
            switch self {
            case .read: Int32(SHUT_RD)
            case .both: Int32(SHUT_RDWR)
            }
        }
    }

    /// `shutdown(2)`. Errors (a peer already gone: `ENOTCONN`) are ignored:
    /// the point is only to wake a thread blocked on the socket.
    public func shutdown(_ direction: Direction) {
        _ = Glibc.shutdown(rawValue, direction.cValue)
    }

    /// The process id of the connected peer (`SO_PEERCRED`), for logs; nil if unknown.
    public func peerProcessID() -> Int32? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (not visible through the Glibc module).
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(rawValue, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, credentials.pid > 0 else { return nil }
        return credentials.pid
    }

    /// `close(2)`. The value must not be used afterwards.
    public func close() {
        _ = Glibc.close(rawValue)
    }

    /// Calls `body` with a `sockaddr_un` for `path`.
    private static func withAddress(_ path: String,
                                    _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) throws(SocketError) -> Int32 {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, !bytes.contains(0) else { throw .invalidPath(path: path) }
        guard bytes.count <= maxPathBytes else { throw .pathTooLong(path: path, bytes: bytes.count) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}

/// A socket call that failed.
public enum SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed with `errno`; `path` is the socket path it was given, if any.
    case system(call: String, path: String?, errno: Errno)
    /// The path does not fit a socket address.
    case pathTooLong(path: String, bytes: Int)
    /// The path is empty or contains a NUL byte.
    case invalidPath(path: String)

    /// The errno of a failed call, if this is one.
    public var errno: Errno? {
        if case .system(_, _, let code) = self { return code }
        return nil
    }

    /// One line: the call, the path, what the system said and, where it helps, what to do.
    public var description: String {
        switch self {
        case .system(let call, let path, let code):
            let place = path.map { " \($0)" } ?? ""
            return "\(call)\(place): \(code) (errno \(code.rawValue))"
        case .pathTooLong(let path, let bytes):
            return "socket path \(path) is \(bytes) bytes; a Unix socket path holds at most \(UnixSocket.maxPathBytes); choose a shorter path"
        case .invalidPath(let path):
            return "socket path \"\(path)\" is empty or contains a NUL byte"
        }
    }
}
