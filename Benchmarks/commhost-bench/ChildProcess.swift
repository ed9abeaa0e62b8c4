import Glibc

/// A program started with pipes on its stdin and stdout (stderr goes to a
/// file or /dev/null), driven through raw descriptors so the bench measures
/// the pipes, not a stream library.
final class ChildProcess {
    /// The process id.
    let pid: pid_t
    /// Write end of the child's stdin (-1 once closed).
    private(set) var stdin: Int32
    /// Read end of the child's stdout.
    let stdout: Int32
    private var reaped = false

    /// Why a program could not be started.
    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `arguments[0]` (a path) with `arguments`. Its stderr goes to
    /// `stderrPath` (appended) or to /dev/null. Nothing is written before
    /// the caller writes.
    init(_ arguments: [String], stderrPath: String? = nil) throws {
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
        // pipe2 is not visible from Swift's Glibc module; set FD_CLOEXEC after pipe().
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0 else {
            throw SpawnError(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in inPipe + outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        let errPath = stderrPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, arguments[0], &actions, nil, argv, environ)
        close(inPipe[0])
        close(outPipe[1])
        guard rc == 0 else {
            close(inPipe[1])
            close(outPipe[0])
            throw SpawnError(description: "cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        pid = child
        stdin = inPipe[1]
        stdout = outPipe[0]
    }

    /// Writes all of `bytes` to the child's stdin; false if the pipe broke.
    @discardableResult
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        ChildProcess.writeAll(stdin, bytes)
    }

    /// Writes all of `bytes` to `fd`; false on error.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// Closes the child's stdin (end of input).
    func closeInput() {
        if stdin >= 0 {
            close(stdin)
            stdin = -1
        }
    }

    /// The child's resident set size in bytes (VmRSS), or nil once it is gone.
    func residentBytes() -> Int? {
        ChildProcess.residentBytes(pid: pid)
    }

    /// VmRSS of `pid` in bytes.
    static func residentBytes(pid: pid_t) -> Int? {
        guard let text = readSmallFile("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
            return kb.map { $0 * 1024 }
        }
        return nil
    }

    /// Closes input, waits for exit (sending SIGTERM after `grace` seconds,
    /// SIGKILL after twice that) and returns the exit status.
    @discardableResult
    func finish(grace: Double = 5) -> Int32 {
        closeInput()
        defer { close(stdout) }
        let deadline = Clock.nanos() + UInt64(grace * 1e9)
        var signalled: Int32 = 0
        var status: Int32 = 0
        while !reaped {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { reaped = true; break }
            if r < 0 { reaped = true; return -1 }
            let now = Clock.nanos()
            if now > deadline && signalled == 0 { kill(pid, SIGTERM); signalled = SIGTERM }
            if now > deadline + UInt64(grace * 1e9) && signalled == SIGTERM { kill(pid, SIGKILL); signalled = SIGKILL }
            // Drain output so a child blocked on a full pipe can finish.
            var pfd = pollfd(fd: stdout, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 5) > 0 {
                var scratch = [UInt8](repeating: 0, count: 1 << 16)
                _ = scratch.withUnsafeMutableBytes { read(stdout, $0.baseAddress!, $0.count) }
            }
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    deinit {
        if !reaped {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            closeInput()
            close(stdout)
        }
    }
}

/// Reads a small text file (such as one under /proc) whole.
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Runs a program to completion and returns its exit status and stdout.
func runProgram(_ arguments: [String], stderrPath: String? = nil) throws -> (status: Int32, output: String) {
    let child = try ChildProcess(arguments, stderrPath: stderrPath)
    child.closeInput()
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(child.stdout, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    let status = child.finish()
    return (status, String(decoding: bytes, as: UTF8.self))
}
