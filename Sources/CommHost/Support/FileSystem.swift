import Glibc

/// The few path and file calls the manifest checks, the loader and the
/// reloader make, each a thin wrapper over one libc call that fails with
/// an ``Errno``.
public enum FileSystem {
    /// What `stat(2)` says about a path.
    struct Status {
        /// `st_mode`: type and permission bits.
        var mode: mode_t
        /// `st_uid`: the owner.
        var owner: uid_t

        var isDirectory: Bool { mode & S_IFMT == S_IFDIR }
        var isRegularFile: Bool { mode & S_IFMT == S_IFREG }
        /// `S_ISVTX`: in a directory, only an entry's owner may rename or delete it.
        var isSticky: Bool { mode & S_ISVTX != 0 }
        /// Permission bits as four octal digits, e.g. `0775`.
        var octalPermissions: String {
            let text = String(mode & 0o7777, radix: 8)
            return String(repeating: "0", count: max(0, 4 - text.count)) + text
        }
    }

    /// `realpath(3)`: the absolute path with every symlink, `.` and `..` resolved.
    static func realPath(_ path: String) -> Result<String, Errno> {
        guard let resolved = Glibc.realpath(path, nil) else { return .failure(.current) }
        defer { free(resolved) }
        return .success(String(cString: resolved))
    }

    /// `stat(2)` (follows symlinks).
    static func status(_ path: String) -> Result<Status, Errno> {
        var st = stat()
        guard stat(path, &st) == 0 else { return .failure(.current) }
        return .success(Status(mode: st.st_mode, owner: st.st_uid))
    }

    /// Whether `lstat(2)` finds an entry (a dangling symlink counts).
    static func entryExists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// The user the host runs as (`geteuid(2)`).
    static var effectiveUser: uid_t { geteuid() }

    /// The current working directory (`getcwd(3)`), or `/` if it cannot be had.
    public static func currentDirectory() -> String {
        guard let cwd = getcwd(nil, 0) else { return "/" }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    /// The whole contents of the file at `path`.
    public static func readFile(_ path: String) -> Result<[UInt8], Errno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.current) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                let failure = Errno.current
                if failure == .interrupted { continue }
                return .failure(failure)
            }
            if n == 0 { return .success(bytes) }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// Writes all of `bytes` to `fd` (`write(2)` until done, retried on
    /// `EINTR`). A write that fails or writes nothing throws.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                let failure = Errno.current
                if failure == .interrupted { continue }
                throw failure
            }
            guard n > 0 else { throw Errno.ioError }
            offset += n
        }
    }

    /// `path` made absolute against `directory` when relative, with `.`
    /// and `..` left in place (the caller resolves with `realPath`).
    static func absolute(_ path: String, relativeTo directory: String) -> String {
        if path.hasPrefix("/") { return path }
        return directory.hasSuffix("/") ? directory + path : directory + "/" + path
    }

    /// Everything before the last `/` (`/` for a file at the root).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// Whether `path` (a real path) is `directory` (a real path) or inside it.
    static func isInside(_ path: String, directory: String) -> Bool {
        if directory == "/" { return path.hasPrefix("/") }
        return path == directory || path.hasPrefix(directory + "/")
    }

    /// `mkdir -p`: every missing directory of `path`, mode 0755.
    public static func makeDirectories(_ path: String) throws(Errno) {
        if path.isEmpty || access(path, F_OK) == 0 { return }
        try makeDirectories(directory(of: path))
        guard mkdir(path, 0o755) == 0 || Errno.current == .fileExists else { throw Errno.current }
    }
}
