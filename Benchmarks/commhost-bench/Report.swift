/// How a measured value is shown: its unit and whether more is better.
struct Unit: Sendable {
    var symbol: String
    var higherIsBetter: Bool

    static let perSecond = Unit(symbol: "msg/s", higherIsBetter: true)
    static let megabytesPerSecond = Unit(symbol: "MB/s", higherIsBetter: true)
    static let microseconds = Unit(symbol: "µs", higherIsBetter: false)
    static let milliseconds = Unit(symbol: "ms", higherIsBetter: false)
    static let bytes = Unit(symbol: "B", higherIsBetter: false)
    static let mebibytes = Unit(symbol: "MiB", higherIsBetter: false)
    static let count = Unit(symbol: "msgs", higherIsBetter: false)
}

/// What a row's target says of the commhost value (and its baseline).
struct Target: Sendable {
    /// The target as written in the table, e.g. "≥ 1 M/s and ≥ 20×".
    var text: String
    /// Whether the measured values meet it; nil for rows without a target.
    var check: (@Sendable (_ commhost: Double, _ baseline: Double) -> Bool)?

    static let none = Target(text: "(context)", check: nil)
}

/// One line of the results table: a commhost measurement beside its
/// baseline, measured in the same run.
struct Row: Sendable {
    var scenario: String
    var measure: String
    var unit: Unit
    var commhost: Samples
    var baselineName: String
    var baseline: Samples
    var target: Target

    var ratio: Double {
        let b = baseline.median
        return b == 0 ? .infinity : commhost.median / b
    }

    /// "met", "missed" or "—" (no target).
    var result: String {
        guard let check = target.check else { return "—" }
        return check(commhost.median, baseline.median) ? "met" : "**missed**"
    }

    var met: Bool? {
        target.check.map { $0(commhost.median, baseline.median) }
    }
}

/// The table as markdown.
enum Report {
    static let header = ["scenario", "measure", "commhost", "± spread", "baseline", "baseline value", "± spread", "commhost ÷ baseline", "target", "result"]

    static func markdown(_ rows: [Row]) -> String {
        var lines: [String] = []
        lines.append("| " + header.joined(separator: " | ") + " |")
        lines.append("|" + header.map { _ in "---" }.joined(separator: "|") + "|")
        for row in rows {
            let cells = [
                row.scenario,
                row.measure,
                format(row.commhost.median, row.unit),
                percent(row.commhost.spread),
                row.baselineName,
                format(row.baseline.median, row.unit),
                percent(row.baseline.spread),
                ratioText(row.ratio),
                row.target.text,
                row.result,
            ]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A value with its unit, three significant digits, SI prefix for rates.
    static func format(_ value: Double, _ unit: Unit) -> String {
        if !value.isFinite { return "n/a" }
        switch unit.symbol {
        case "msg/s":
            if value >= 1e6 { return fixed(value / 1e6) + " M msg/s" }
            if value >= 1e3 { return fixed(value / 1e3) + " k msg/s" }
            return fixed(value) + " msg/s"
        case "B":
            if value >= Double(1 << 20) { return fixed(value / Double(1 << 20)) + " MiB" }
            if value >= Double(1 << 10) { return fixed(value / Double(1 << 10)) + " KiB" }
            return fixed(value) + " B"
        default:
            return fixed(value) + " " + unit.symbol
        }
    }

    /// Three significant digits without exponent.
    static func fixed(_ value: Double) -> String {
        let a = abs(value)
        let decimals = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3
        return formatDecimal(value, decimals: decimals)
    }

    static func formatDecimal(_ value: Double, decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (value * scale).rounded()
        let negative = scaled < 0
        let digits = String(Int(abs(scaled)))
        var text: String
        if decimals == 0 {
            text = digits
        } else {
            let padded = String(repeating: "0", count: max(0, decimals + 1 - digits.count)) + digits
            text = String(padded.dropLast(decimals)) + "." + String(padded.suffix(decimals))
        }
        return (negative ? "-" : "") + text
    }

    static func percent(_ fraction: Double) -> String {
        "±" + formatDecimal(fraction * 100, decimals: 1) + "%"
    }

    static func ratioText(_ ratio: Double) -> String {
        if !ratio.isFinite { return "n/a" }
        return fixed(ratio) + "×"
    }
}
