/// How `commhost worker` was started: the socket it serves, the staged
/// library it loads and the limits it runs under. The host builds the
/// command line; see `WorkerMain`.
public struct WorkerOptions: Sendable, Equatable {
    /// The worker's end of the socket pair the host made (inherited).
    public var fd: Int32
    /// The staged copy of the library, which the host has already checked and hashed.
    public var libraryPath: String
    /// Limits applied before the library is loaded.
    public var limits: WorkerLimits
    /// The largest frame the worker accepts from the host.
    public var maxFrameBytes: Int

    /// The default frame bound: 1 GiB, well past any frame a host with the
    /// default wire limits sends (a comm message's raw bytes are smaller
    /// than its frame on the wire).
    public static let defaultMaxFrameBytes = 1 << 30

    public init(fd: Int32, libraryPath: String, limits: WorkerLimits = WorkerLimits(), maxFrameBytes: Int = defaultMaxFrameBytes) {
        self.fd = fd
        self.libraryPath = libraryPath
        self.limits = limits
        self.maxFrameBytes = maxFrameBytes
    }
}
