/// Why ``FrameReader`` stopped reading.
public enum FrameReaderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `read(2)` (or `poll(2)` while waiting for data) on the descriptor failed with `errno`
    /// (other than `EINTR`, which is retried, and `EAGAIN`, which means "wait"): an
    /// ``Errno``'s raw value.
    case readFailed(fileDescriptor: Int32, errno: Int32)

    /// The failed read's error.
    public var errno: Errno {
        switch self {
        case let .readFailed(_, code): Errno(rawValue: code)
        }
    }

    /// The failing call, the descriptor and the system's text for the error.
    public var description: String {
        switch self {
        case let .readFailed(fd, code):
            "reading frames from file descriptor \(fd) failed: \(Errno(rawValue: code)) (errno \(code))"
        }
    }
}
