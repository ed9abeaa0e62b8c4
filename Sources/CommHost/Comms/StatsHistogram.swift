import Glibc
import Synchronization

/// Durations recorded from any thread without a lock: one relaxed atomic
/// add per bucket and one for the sum. Buckets are log-linear (eight per
/// power of two of nanoseconds), so a percentile read back is within 6.25 %
/// of the true value; durations of 2^40 ns (about 18 minutes) and more share
/// the last bucket.
final class StatsHistogram: Sendable {
    /// Sub-buckets per power of two (2^3).
    private static let subBucketBits = 3
    private static let subBuckets = 1 << subBucketBits
    /// Exponents 3...39 each get `subBuckets` buckets after the first 8 exact ones.
    static let bucketCount = (39 - 1) * 8
    private static let largest: UInt64 = (1 << 40) - 1

    private let buckets: InlineArray<304, Atomic<UInt64>>
    private let sumNanoseconds = Atomic<UInt64>(0)

    init() {
        buckets = InlineArray { _ in Atomic<UInt64>(0) }
    }

    /// Records one duration.
    func record(nanoseconds: UInt64) {
        let value = min(nanoseconds, Self.largest)
        buckets[Self.bucket(of: value)].add(1, ordering: .relaxed)
        sumNanoseconds.add(value, ordering: .relaxed)
    }

    /// Which bucket holds `value` (at most `largest`).
    static func bucket(of value: UInt64) -> Int {
        guard value >= UInt64(subBuckets) else { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount
        let mantissa = Int(value >> UInt64(exponent - subBucketBits)) & (subBuckets - 1)
        return (exponent - subBucketBits + 1) * subBuckets + mantissa
    }

    /// The smallest value in bucket `index`, and how many values it spans.
    static func range(of index: Int) -> (low: UInt64, width: UInt64) {
        guard index >= subBuckets else { return (UInt64(index), 1) }
        let exponent = index / subBuckets + subBucketBits - 1
        let mantissa = UInt64(index % subBuckets)
        let width = UInt64(1) << UInt64(exponent - subBucketBits)
        return ((UInt64(subBuckets) + mantissa) * width, width)
    }

    /// What was recorded so far: count, mean and two percentiles, in
    /// nanoseconds. Recording may go on meanwhile; the figures are each
    /// read once, so they may disagree by the calls that landed in between.
    func summary() -> StatsSnapshot.HandlerTime {
        var counts = [UInt64](repeating: 0, count: Self.bucketCount)
        var total: UInt64 = 0
        for index in 0..<Self.bucketCount {
            counts[index] = buckets[index].load(ordering: .relaxed)
            total += counts[index]
        }
        guard total > 0 else { return StatsSnapshot.HandlerTime() }
        let sum = sumNanoseconds.load(ordering: .relaxed)
        func percentile(_ fraction: Double) -> Double {
            let rank = max(1, UInt64((fraction * Double(total)).rounded(.up)))
            var seen: UInt64 = 0
            for index in 0..<Self.bucketCount {
                seen += counts[index]
                if seen >= rank {
                    let (low, width) = Self.range(of: index)
                    return Double(low) + Double(width - 1) / 2
                }
            }
            return Double(Self.largest)
        }
        return StatsSnapshot.HandlerTime(count: Int(total), meanNanoseconds: Double(sum) / Double(total),
                                         p50Nanoseconds: percentile(0.50), p99Nanoseconds: percentile(0.99))
    }
}
