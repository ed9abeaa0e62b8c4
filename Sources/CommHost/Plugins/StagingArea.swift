import Glibc
import Synchronization

/// A host-private directory (mode 0700) holding the uniquely named copies of
/// libraries that commhost actually dlopens. dlopen of a path, symlink or hard
/// link to an already loaded library returns the old handle, and overwriting a
/// loaded file crashes the process, so the build output itself is never opened.
public final class StagingArea: Sendable {
    /// Absolute path of the directory.
    public let directory: String
    private let counter = Atomic<Int>(0)

    /// Makes a new private directory under `parent` (default `$TMPDIR`, else `/tmp`).
    public init(parent: String? = nil) throws(LoadError) {
        let base = parent ?? getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/commhost-stage-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw LoadError(.staging, path: base, reason: "cannot create a private staging directory: \(Errno.current)")
        }
        directory = String(cString: made)
    }

    /// Writes `bytes` to a new file whose name no other staged copy has ever
    /// had (created with `O_EXCL`), and returns its path.
    func stage(_ bytes: UnsafeRawBufferPointer, originalPath: String) throws(LoadError) -> String {
        let base = originalPath.split(separator: "/").last.map(String.init) ?? "library.so"
        let serial = counter.add(1, ordering: .relaxed).newValue
        let path = "\(directory)/\(serial)-\(base)"
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o500)
        guard fd >= 0 else {
            throw LoadError(.staging, path: originalPath, reason: "cannot stage a copy at \(path): \(Errno.current)")
        }
        defer { Glibc.close(fd) }
        do {
            try FileSystem.writeAll(fd, bytes)
        } catch {
            unlink(path)
            throw LoadError(.staging, path: originalPath, reason: "cannot write the staged copy \(path): \(error)")
        }
        return path
    }

    /// Deletes one staged copy (its mapping, if loaded, stays valid).
    func remove(_ stagedPath: String) {
        unlink(stagedPath)
    }

    /// Deletes the directory and every staged copy in it.
    public func removeAll() {
        guard let dir = opendir(directory) else { return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { unlink("\(directory)/\(name)") }
        }
        closedir(dir)
        rmdir(directory)
    }
}
