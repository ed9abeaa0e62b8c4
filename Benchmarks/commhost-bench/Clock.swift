import Glibc

/// Monotonic time for measurements.
enum Clock {
    /// Nanoseconds on CLOCK_MONOTONIC.
    static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Seconds elapsed since `start` (a value of `nanos()`).
    static func seconds(since start: UInt64) -> Double {
        Double(nanos() &- start) / 1e9
    }
}
