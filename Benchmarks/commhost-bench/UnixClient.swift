import Glibc

/// Connects to a Unix stream socket (the client side only).
enum UnixClient {
    /// A connected descriptor for `path`, or nil when nothing listens there.
    static func connect(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            return nil
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let ok = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard ok == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Connects, retrying every 2 ms for up to `timeout` seconds (a server
    /// that is still starting).
    static func connect(_ path: String, timeout: Double) -> Int32? {
        let deadline = Clock.nanos() + UInt64(timeout * 1e9)
        while Clock.nanos() < deadline {
            if let fd = connect(path) { return fd }
            usleep(2000)
        }
        return nil
    }
}
