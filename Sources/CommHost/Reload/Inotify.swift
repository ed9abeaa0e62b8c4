import Glibc

/// An inotify instance (`inotify_init1`): the only place commhost calls the
/// inotify functions.
/// @unchecked Sendable: the descriptor is immutable and the kernel serializes calls on it.
final class Inotify: @unchecked Sendable {
    /// One event: the watch it came from, its mask and the file name in the
    /// watched directory (empty for events on the directory itself).
    struct Event {
        var watch: Int32
        var mask: UInt32
        var name: String
    }

    /// `IN_CLOSE_WRITE`: a file opened for writing was closed.
    static let closeWrite = UInt32(IN_CLOSE_WRITE)
    /// `IN_MOVED_TO`: a file was renamed into the directory (how linkers publish).
    static let movedTo = UInt32(IN_MOVED_TO)
    /// `IN_CREATE`: a file was created (a hard link or an empty file).
    static let create = UInt32(IN_CREATE)
    /// `IN_Q_OVERFLOW`: events were lost; rescan.
    static let overflow = UInt32(IN_Q_OVERFLOW)

    let fd: Int32

    /// `inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`.
    init() throws(Errno) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { throw Errno.current }
    }

    deinit { close(fd) }

    /// `inotify_add_watch(directory, mask)`.
    func watch(directory: String, mask: UInt32) throws(Errno) -> Int32 {
        let wd = inotify_add_watch(fd, directory, mask)
        guard wd >= 0 else { throw Errno.current }
        return wd
    }

    /// `inotify_rm_watch`.
    func unwatch(_ wd: Int32) {
        inotify_rm_watch(fd, wd)
    }

    /// Waits up to `milliseconds` for events and returns what arrived (empty on timeout).
    func read(waitingAtMost milliseconds: Int32) -> [Event] {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, milliseconds) > 0 else { return [] }
        var events: [Event] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && Errno.current == .interrupted { continue }
            guard n > 0 else { break }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                let header = MemoryLayout<inotify_event>.size
                while offset + header <= n {
                    let wd = raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                    let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let length = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameBytes = UnsafeRawBufferPointer(rebasing: raw[(offset + header)..<min(offset + header + length, n)])
                    let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                    events.append(Event(watch: wd, mask: mask, name: name))
                    offset += header + length
                }
            }
        }
        return events
    }
}
