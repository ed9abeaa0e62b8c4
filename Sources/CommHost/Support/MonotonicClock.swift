import Glibc

/// `CLOCK_MONOTONIC`: for durations and deadlines (never wall time).
public enum MonotonicClock {
    /// Now, in nanoseconds.
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Now, in seconds.
    public static func seconds() -> Double {
        Double(nanoseconds()) / 1e9
    }
}
