import Dispatch
import Glibc

/// Listens on a Unix-domain stream socket and serves each connection as one
/// session (its own comm table, the same wire and dialect as stdio), on a
/// thread of its own through a ``StreamTransport``.
///
/// - The socket file is created with `mode` and nothing wider at any moment
///   (bound under a umask of 0177, then `chmod`ed). A socket file left by a
///   dead host is replaced; one a live process is listening on is refused,
///   and so is anything at the path that is not a socket.
/// - A client that disconnects ends its session: every comm of it gets its
///   close callback (cause `session_ended`); other sessions are untouched.
/// - A session that falls more than `limits.max_outbound_bytes` behind is
///   disconnected at once with a logged reason.
/// - ``stop(reason:)`` stops accepting; ``run(shutdownGrace:)`` then closes
///   every comm (cause `shutdown`), lets each client take what was already
///   sent for `shutdownGrace` seconds, disconnects those that have not, and
///   removes the socket file.
public final class SocketServer: Sendable {
    /// The socket file's path.
    public let path: String
    private let listener: UnixSocket
    private let identity: FileIdentity
    private let manager: CommManager
    private let logger: Logger
    /// A pipe whose read end becomes readable when `stop` is called.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// Guards the server's state: the accept loop, connection threads and `stop` contend for it.
    private let state = Locked(State())

    private struct State {
        /// Set once by `stop`: why the server is stopping.
        var stopReason: String?
        /// Connections whose thread has not finished, by session id.
        var connections: [Int: Connection] = [:]
    }

    /// The device and inode of the socket file this server created, so it
    /// only ever removes its own file.
    private struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64

        init?(path: String) {
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }
    }

    /// Creates the socket file at `path` with permissions `mode` and starts
    /// listening (connections wait until ``run(shutdownGrace:)``).
    /// Throws when the path is taken by a live host or by a non-socket, or
    /// the socket cannot be created.
    public init(path: String, mode: mode_t, manager: CommManager, logger: Logger) throws(SocketServerError) {
        self.path = path
        self.manager = manager
        self.logger = logger
        try Self.clearStaleSocket(at: path, logger: logger)
        let socket: UnixSocket
        do {
            socket = try UnixSocket.stream()
        } catch {
            throw .socket(error)
        }
        do {
            // umask is per process; nothing else creates files while the host starts.
            let previous = umask(0o177)
            defer { umask(previous) }
            try socket.bind(to: path)
        } catch {
            socket.close()
            if error.errno == .addressInUse { throw .inUse(path: path) }
            throw .socket(error)
        }
        guard chmod(path, mode) == 0 else {
            let failure = Errno.current
            socket.close()
            unlink(path)
            throw .socket(.system(call: "chmod", path: path, errno: failure))
        }
        do {
            try socket.listen(backlog: SOMAXCONN)
        } catch {
            socket.close()
            unlink(path)
            throw .socket(error)
        }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0, let identity = FileIdentity(path: path) else {
            let failure = Errno.current
            socket.close()
            unlink(path)
            throw .socket(.system(call: "pipe", path: nil, errno: failure))
        }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        listener = socket
        self.identity = identity
        wakeRead = ends[0]
        wakeWrite = ends[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Makes room for a new socket at `path`: nothing there is fine; a
    /// socket nobody listens on (a host that died) is removed; anything
    /// else is refused.
    private static func clearStaleSocket(at path: String, logger: Logger) throws(SocketServerError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
        let probe: UnixSocket
        do {
            probe = try UnixSocket.stream()
        } catch {
            throw .socket(error)
        }
        defer { probe.close() }
        switch Result(catching: { () throws(SocketError) in try probe.connect(to: path) }) {
        case .success:
            throw .inUse(path: path)
        case .failure(let error) where error.errno == .connectionRefused:
            logger.warning("replacing a stale socket file (no process is listening on it)", [("socket", .string(path))])
            guard unlink(path) == 0 || Errno.current == .noSuchFileOrDirectory else {
                throw .socket(.system(call: "unlink", path: path, errno: .current))
            }
        case .failure(let error) where error.errno == .noSuchFileOrDirectory:
            return
        case .failure(let error):
            throw .undetermined(path: path, error)
        }
    }

    /// Accepts and serves connections until ``stop(reason:)``, then shuts
    /// every session down (see the type's description) and returns once
    /// every connection's thread has finished and the socket file is gone.
    public func run(shutdownGrace: Double = 2) {
        logger.info("listening", [("socket", .string(path))])
        acceptUntilStopped()
        listener.close()
        removeSocketFile()
        let reason = state.withLock { $0.stopReason } ?? "stopped"
        logger.info("shutting down sessions", [("reason", .string(reason))])
        manager.shutdown()
        let open = state.withLock { Array($0.connections.values) }
        for connection in open { connection.shutdown(.read) }
        let deadline = DispatchTime.now() + shutdownGrace
        var stragglers: [Connection] = []
        for connection in open where connection.finished.wait(timeout: deadline) == .timedOut {
            stragglers.append(connection)
        }
        for connection in stragglers {
            logger.warning("disconnecting a client that did not read its last frames within the shutdown grace",
                           [("session", .int(connection.session.id)), ("grace_s", .string("\(shutdownGrace)"))])
            connection.shutdown(.both)
        }
        for connection in stragglers { connection.finished.wait() }
    }

    /// Asks ``run(shutdownGrace:)`` to stop accepting and shut down. Safe
    /// from any thread; later calls keep the first reason.
    public func stop(reason: String) {
        let first = state.withLock { current -> Bool in
            guard current.stopReason == nil else { return false }
            current.stopReason = reason
            return true
        }
        guard first else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    // MARK: Accepting

    private func acceptUntilStopped() {
        var entries = [pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        while state.withLock({ $0.stopReason == nil }) {
            entries[0].revents = 0
            entries[1].revents = 0
            guard poll(&entries, 2, -1) >= 0 else {
                let failure = Errno.current
                if failure == .interrupted { continue }
                logger.error("waiting for connections failed; stopping", [("error", .string("\(failure)"))])
                stop(reason: "poll failed")
                return
            }
            if entries[1].revents != 0 { return }
            guard entries[0].revents != 0 else { continue }
            do {
                serve(try listener.accept())
            } catch {
                switch error.errno {
                case .connectionAbort?, .wouldBlock?:
                    continue
                default:
                    // Out of descriptors or memory: say so, and give the
                    // system a moment rather than spinning.
                    logger.error("accepting a connection failed", [("socket", .string(path)), ("error", .string("\(error)"))])
                    var wake = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
                    _ = poll(&wake, 1, 100)
                }
            }
        }
    }

    /// Starts a session for `socket` on a thread of its own, or refuses it
    /// (one `error` frame, then the socket is closed) when
    /// `limits.max_sessions` are already being served: each session costs
    /// two threads, so a client cannot make the host start without bound.
    private func serve(_ socket: UnixSocket) {
        let limit = manager.limits.maxSessions
        let serving = state.withLock { $0.connections.count }
        guard serving < limit else {
            let reason = "this host already serves \(limit) sessions (limits.max_sessions); connection refused"
            logger.warning("refusing a connection", [("socket", .string(path)), ("reason", .string(reason))])
            var encoder = FrameEncoder(dialect: manager.dialect)
            var frame: [UInt8] = []
            encoder.error(into: &frame, ename: "TooManySessions", evalue: reason, line: nil, parent: nil)
            // A fresh socket's buffer takes one small frame; never block the accept loop on it.
            _ = frame.withUnsafeBytes { send(socket.rawValue, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            socket.close()
            return
        }
        let session = manager.makeSession()
        let connection = Connection(session: session, socket: socket)
        state.withLock { $0.connections[session.id] = connection }
        session.whenEndedEarly { connection.shutdown(.both) }
        do throws(Errno) {
            // `finished` is signalled once the thread holds nothing (not even the session).
            try HostThread.start(name: "session-\(session.id)", { [self] in serveConnection(connection) },
                                 afterwards: { [finished = connection.finished] in finished.signal() })
        } catch {
            logger.error("cannot start a thread for a session; closing its connection",
                         [("socket", .string(path)), ("session", .int(session.id)), ("error", .string("\(error)"))])
            manager.end(session, cause: .sessionEnded)
            connection.close()
            state.withLock { _ = $0.connections.removeValue(forKey: session.id) }
            connection.finished.signal()
        }
    }

    /// The body of a connection's thread: reads frames until the client
    /// disconnects or the session ends, then ends the session, lets the
    /// writer finish and closes the socket.
    private func serveConnection(_ connection: Connection) {
        let session = connection.session
        var fields: [(String, LogValue)] = [("session", .int(session.id))]
        if let pid = connection.socket.peerProcessID() { fields.append(("peer_pid", .int(Int(pid)))) }
        logger.info("session started", fields)
        let transport = StreamTransport(session: session, input: connection.socket.rawValue, output: connection.socket.rawValue,
                                        limits: manager.limits, logger: logger)
        transport.run()
        let stopping = state.withLock { $0.stopReason != nil }
        manager.end(session, cause: stopping ? .shutdown : .sessionEnded)
        transport.finishOutput()
        connection.close()
        let reason = session.earlyEndReason ?? (stopping ? "host shutting down" : "client disconnected")
        logger.info("session ended", [("session", .int(session.id)), ("reason", .string(reason))])
        state.withLock { _ = $0.connections.removeValue(forKey: session.id) }
    }

    private func removeSocketFile() {
        guard FileIdentity(path: path) == identity else {
            logger.warning("the socket file was replaced by another process; leaving it", [("socket", .string(path))])
            return
        }
        unlink(path)
    }
}

/// One accepted connection: its session and its socket, which stays open
/// until the connection's thread closes it (so `shutdown` never touches a
/// reused descriptor).
private final class Connection: Sendable {
    let session: Session
    let socket: UnixSocket
    /// Signalled once the connection's thread has ended and holds nothing.
    let finished = DispatchSemaphore(value: 0)
    /// Guards whether the socket is still open: `shutdown` and the connection's thread race to close it.
    private let open = Locked(true)

    init(session: Session, socket: UnixSocket) {
        self.session = session
        self.socket = socket
    }

    /// Wakes the connection's reader (`.read`) or reader and writer (`.both`).
    func shutdown(_ direction: UnixSocket.Direction) {
        open.withLock { isOpen in
            if isOpen { socket.shutdown(direction) }
        }
    }

    /// Closes the socket; later `shutdown` calls do nothing.
    func close() {
        open.withLock { isOpen in
            if isOpen { socket.close() }
            isOpen = false
        }
    }
}

/// Why ``SocketServer`` could not start listening.
public enum SocketServerError: Error, Sendable, CustomStringConvertible {
    /// A live process is listening on the path.
    case inUse(path: String)
    /// Something that is not a socket is at the path.
    case notASocket(path: String)
    /// A socket is at the path, but whether anyone listens on it cannot be told.
    case undetermined(path: String, SocketError)
    /// Creating, binding or listening on the socket failed.
    case socket(SocketError)

    /// One line saying what is wrong and what to do.
    public var description: String {
        switch self {
        case .inUse(let path):
            return "another process is already listening on \(path); stop it, or give --socket another path"
        case .notASocket(let path):
            return "\(path) exists and is not a socket; refusing to replace it. Remove it, or give --socket another path"
        case .undetermined(let path, let error):
            return "cannot tell whether a host is listening on \(path) (\(error)); remove the file if no host is running, or give --socket another path"
        case .socket(let error):
            return "cannot listen on the socket: \(error)"
        }
    }
}
