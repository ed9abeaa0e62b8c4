import Glibc

/// The rule OpenSSH applies under `StrictModes` (`safe_path` in its
/// misc.c), applied to every library before it is staged and to the
/// manifest itself: the file and every directory from it up to `/` (after
/// resolving symlinks) must be owned by root or by the user running the
/// host, and must not be writable by group or others. One exception that
/// OpenSSH does not make: a root-owned directory with the sticky bit (such
/// as `/tmp`) may be writable by anyone, since then only an entry's owner
/// can rename or remove it.
///
/// Anyone who could write any of these could replace the code the host runs.
enum PathSafety {
    /// Every reason `realPath` (already resolved by `realpath`) is unsafe,
    /// nearest first: the file, then each directory up to `/`. Empty when safe.
    static func problems(forFile realPath: String, effectiveUser: uid_t = FileSystem.effectiveUser) -> [String] {
        var problems: [String] = []
        switch FileSystem.status(realPath) {
        case .failure(let failure):
            return ["cannot stat \(realPath): \(failure)"]
        case .success(let status):
            if !status.isRegularFile {
                problems.append("\(realPath) is not a regular file")
            } else {
                problems += check(status, describedAs: "file \(realPath)", path: realPath, effectiveUser: effectiveUser)
            }
        }
        var directory = realPath
        while directory != "/" {
            directory = FileSystem.directory(of: directory)
            switch FileSystem.status(directory) {
            case .failure(let failure):
                problems.append("cannot stat directory \(directory): \(failure)")
            case .success(let status):
                problems += check(status, describedAs: "directory \(directory)", path: directory, effectiveUser: effectiveUser)
            }
        }
        return problems
    }

    private static func check(_ status: FileSystem.Status, describedAs what: String, path: String, effectiveUser: uid_t) -> [String] {
        var problems: [String] = []
        if status.owner != 0 && status.owner != effectiveUser {
            problems.append("\(what) is owned by uid \(status.owner); only root or uid \(effectiveUser) (the user running commhost) may own it")
        }
        let groupWritable = status.mode & 0o020 != 0
        let otherWritable = status.mode & 0o002 != 0
        let exempt = status.isDirectory && status.isSticky && status.owner == 0
        if (groupWritable || otherWritable) && !exempt {
            let who = groupWritable && otherWritable ? "group and others" : (groupWritable ? "group" : "others")
            problems.append("\(what) is writable by \(who) (mode \(status.octalPermissions)); fix with: chmod go-w \(path)")
        }
        return problems
    }
}
