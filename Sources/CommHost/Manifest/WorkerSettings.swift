/// A process-isolated target's `worker`: when a crashed worker is restarted,
/// when the target is given up, and the resource limits the worker runs under.
public struct WorkerSettings: Sendable, Equatable {
    /// `max_crashes`: this many crashes within `crashWindowMS` disable the
    /// target; a `comm_open` for it then gets `comm_close` (default 5).
    public var maxCrashes: Int
    /// `crash_window_ms`: the window, in milliseconds, `maxCrashes` is
    /// counted over (default 60000).
    public var crashWindowMS: Int
    /// `restart_backoff_ms`: milliseconds before the first restart after a
    /// crash, 0...5000 (default 100). See `restartDelayMS(crashesInWindow:)`.
    public var restartBackoffMS: Int
    /// `address_space_bytes`: the worker's `RLIMIT_AS`, when given.
    public var addressSpaceBytes: Int?
    /// `cpu_seconds`: the worker's `RLIMIT_CPU`, when given.
    public var cpuSeconds: Int?
    /// `open_files`: the worker's `RLIMIT_NOFILE`, when given.
    public var openFiles: Int?

    /// Settings with the given values (the defaults unless told otherwise).
    public init(maxCrashes: Int = 5, crashWindowMS: Int = 60_000, restartBackoffMS: Int = 100,
                addressSpaceBytes: Int? = nil, cpuSeconds: Int? = nil, openFiles: Int? = nil) {
        self.maxCrashes = maxCrashes
        self.crashWindowMS = crashWindowMS
        self.restartBackoffMS = restartBackoffMS
        self.addressSpaceBytes = addressSpaceBytes
        self.cpuSeconds = cpuSeconds
        self.openFiles = openFiles
    }

    /// The values used for keys the manifest leaves out (and for an
    /// in-process target, which has no worker).
    public static let defaults = WorkerSettings()

    /// The longest wait before a restart, in milliseconds.
    public static let maxRestartBackoffMS = 5000

    /// The accepted range of `restart_backoff_ms`.
    public static let restartBackoffRange = 0...maxRestartBackoffMS

    /// Milliseconds to wait before restarting a worker that has crashed
    /// `crashesInWindow` times (at least 1) within `crashWindowMS`:
    /// `restartBackoffMS` for the first, doubled for each further crash,
    /// never more than `maxRestartBackoffMS`.
    public func restartDelayMS(crashesInWindow: Int) -> Int {
        var delay = restartBackoffMS
        var doublings = max(crashesInWindow, 1) - 1
        while doublings > 0 && delay < Self.maxRestartBackoffMS {
            delay *= 2
            doublings -= 1
        }
        return min(delay, Self.maxRestartBackoffMS)
    }
}
