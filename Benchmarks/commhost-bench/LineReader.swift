import Glibc

/// Reads newline-terminated replies from a descriptor: whole lines, or just
/// a count of them (for throughput, where the content is not looked at).
final class LineReader {
    let fd: Int32
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0

    init(fd: Int32, capacity: Int = 1 << 20) {
        self.fd = fd
        buffer = [UInt8](repeating: 0, count: capacity)
    }

    /// Reads until `count` more newlines have arrived; returns false at end
    /// of stream or on error. Bytes after the last counted newline are kept.
    func skipLines(_ count: Int) -> Bool {
        var remaining = count
        while remaining > 0 {
            if start == end {
                guard fill() else { return false }
            }
            buffer.withUnsafeBytes { raw in
                let base = raw.baseAddress!
                while remaining > 0, start < end, let nl = memchr(base + start, 0x0A, end - start) {
                    start = base.distance(to: UnsafeRawPointer(nl)) + 1
                    remaining -= 1
                }
                if remaining > 0 { start = end }
            }
        }
        return true
    }

    /// The next line without its newline, or nil at end of stream.
    func readLine() -> [UInt8]? {
        while true {
            let found: Int? = buffer.withUnsafeBytes { raw in
                guard start < end, let nl = memchr(raw.baseAddress! + start, 0x0A, end - start) else { return nil }
                return raw.baseAddress!.distance(to: UnsafeRawPointer(nl))
            }
            if let found {
                let line = Array(buffer[start..<found])
                start = found + 1
                return line
            }
            if start > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + start, end - start)
                }
                end -= start
                start = 0
            }
            if end == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
            guard fill(keeping: true) else { return nil }
        }
    }

    private func fill(keeping: Bool = false) -> Bool {
        if !keeping {
            start = 0
            end = 0
        }
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + end, raw.count - end) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            end += n
            return true
        }
    }
}
