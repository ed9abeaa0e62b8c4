/// Measurements of one quantity, one per round (or per operation, for
/// latencies): the median, how far the rounds spread, and percentiles.
struct Samples: Sendable {
    /// The values, in the order measured.
    private(set) var values: [Double]

    init(_ values: [Double] = []) {
        self.values = values
    }

    mutating func append(_ value: Double) {
        values.append(value)
    }

    var isEmpty: Bool { values.isEmpty }

    /// The median (0 when empty).
    var median: Double { percentile(50) }

    /// Nearest-rank percentile `p` (0...100) of the values (0 when empty).
    func percentile(_ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        if p >= 100 { return sorted[sorted.count - 1] }
        if sorted.count % 2 == 0 && p == 50 {
            return (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
    }

    var min: Double { values.min() ?? 0 }
    var max: Double { values.max() ?? 0 }

    /// Half the range of the values as a fraction of the median: the rounds
    /// all fall within median × (1 ± spread).
    var spread: Double {
        let m = median
        guard m != 0 else { return 0 }
        return (max - min) / 2 / abs(m)
    }
}
