import Foundation
import XCTest

/// The benchmark executable runs and reports; its numbers are not judged
/// here (no timed tests: speed is shown by BENCHMARKS.md, not asserted).
final class BenchmarkSmokeTests: XCTestCase {
    /// `commhost-bench --quick --scenario dispatch` exits 0 and prints the
    /// results table with both dispatch rows (against Python's comm manager
    /// and against the split-and-copy limit) and every cell filled.
    func testQuickDispatchRunPrintsATableWithEveryColumnFilled() throws {
        let bench = TestSupport.buildDirectory + "/commhost-bench"
        guard FileManager.default.fileExists(atPath: bench) else {
            return XCTFail("\(bench) is missing: the commhost-bench target was not built beside the tests")
        }
        let result = try TestSupport.run(bench, ["--quick", "--scenario", "dispatch", "--no-write"])
        XCTAssertEqual(result.status, 0, "commhost-bench failed:\n\(result.output)")

        let lines = result.output.split(separator: "\n").map(String.init)
        guard let headerIndex = lines.firstIndex(where: { $0.hasPrefix("| scenario |") }) else {
            return XCTFail("no results table in the output:\n\(result.output)")
        }
        let header = cells(lines[headerIndex])
        XCTAssertEqual(header, ["scenario", "measure", "commhost", "± spread", "baseline", "baseline value", "± spread",
                                "commhost ÷ baseline", "target", "result"])
        let rows = lines[(headerIndex + 2)...].prefix { $0.hasPrefix("|") }.map(cells)
        XCTAssertEqual(rows.count, 2, "expected the two dispatch rows:\n\(result.output)")
        for row in rows {
            XCTAssertEqual(row.count, header.count, "row \(row) does not have one cell per column")
            XCTAssertEqual(row.first, "dispatch")
            for (column, cell) in zip(header, row) {
                XCTAssertFalse(cell.isEmpty, "column \"\(column)\" is empty in \(row)")
                XCTAssertNotEqual(cell, "n/a", "column \"\(column)\" has no value in \(row)")
            }
            // The measured columns hold numbers with units, not placeholders.
            for index in [2, 5, 7] {
                XCTAssertNotNil(row[index].first(where: \.isNumber), "column \"\(header[index])\" has no number: \(row[index])")
                XCTAssertFalse(row[index].hasPrefix("0.000"), "column \"\(header[index])\" measured nothing: \(row[index])")
            }
        }
        XCTAssertTrue(rows.contains { $0[4].contains("Python") }, "no Python comm baseline row:\n\(result.output)")
        XCTAssertTrue(rows.contains { $0[4].contains("split") }, "no split-and-copy baseline row:\n\(result.output)")
    }

    /// The cells of one markdown table line, trimmed.
    private func cells(_ line: String) -> [String] {
        var parts = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.first == "" { parts.removeFirst() }
        if parts.last == "" { parts.removeLast() }
        return parts
    }
}
