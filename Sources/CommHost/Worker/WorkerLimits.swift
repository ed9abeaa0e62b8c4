import Glibc

/// The resource limits a worker applies to itself before it loads its
/// library (`setrlimit`), so the plugin's whole life runs under them. The
/// kernel enforces them: past `cpuSeconds` the worker gets SIGXCPU (and
/// SIGKILL a second later), past `addressSpaceBytes` allocations and
/// mappings fail, past `openFiles` opening a descriptor fails. The host
/// reads the worker's exit status or signal.
public struct WorkerLimits: Sendable, Equatable {
    /// `RLIMIT_AS`: the most virtual memory, in bytes.
    public var addressSpaceBytes: UInt64?
    /// `RLIMIT_CPU`: the most CPU time, in seconds (the soft limit; the
    /// hard limit, where the kernel sends SIGKILL, is one second more).
    public var cpuSeconds: UInt64?
    /// `RLIMIT_NOFILE`: one more than the highest descriptor number.
    public var openFiles: UInt64?

    /// No limits beyond the ones the worker inherited.
    public init(addressSpaceBytes: UInt64? = nil, cpuSeconds: UInt64? = nil, openFiles: UInt64? = nil) {
        self.addressSpaceBytes = addressSpaceBytes
        self.cpuSeconds = cpuSeconds
        self.openFiles = openFiles
    }

    /// Why a limit could not be applied: which one, and the system's reason.
    struct Failure: Error, CustomStringConvertible {
        var option: String
        var value: UInt64
        var failure: Errno
        var description: String { "cannot apply \(option) \(value): setrlimit failed: \(failure)" }
    }

    /// Lowers the process's limits to the given values. A limit is never
    /// raised past the hard limit the worker inherited (an unprivileged
    /// process cannot), so asking for more than that keeps the inherited one.
    func apply() throws(Failure) {
        if let bytes = addressSpaceBytes { try Self.lower(RLIMIT_AS, soft: bytes, hard: bytes, option: "--address-space") }
        if let seconds = cpuSeconds {
            try Self.lower(RLIMIT_CPU, soft: seconds, hard: seconds == .max ? seconds : seconds + 1, option: "--cpu-seconds")
        }
        if let files = openFiles { try Self.lower(RLIMIT_NOFILE, soft: files, hard: files, option: "--open-files") }
    }

    private static func lower(_ resource: __rlimit_resource, soft: UInt64, hard: UInt64, option: String) throws(Failure) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0 else { throw Failure(option: option, value: soft, failure: .current) }
        // RLIM_INFINITY is the largest value, so min keeps an unlimited hard limit's request as asked.
        limit.rlim_max = min(limit.rlim_max, rlim_t(hard))
        limit.rlim_cur = min(limit.rlim_max, rlim_t(soft))
        guard setrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0 else { throw Failure(option: option, value: soft, failure: .current) }
    }
}
