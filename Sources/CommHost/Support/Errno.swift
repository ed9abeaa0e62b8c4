import Glibc

/// An `errno` value with its `strerror` text: what the host's system-call
/// wrappers (inotify, threads) throw.
struct Errno: Error, CustomStringConvertible {
    var code: Int32
    init(_ code: Int32) { self.code = code }
    var description: String { String(cString: strerror(code)) }
}
