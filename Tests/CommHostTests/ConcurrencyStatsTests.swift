@testable import CommHost
import Foundation
import XCTest

/// The stats counters in process: the lock-free handler-time histogram
/// under many threads, its bucket arithmetic and percentiles, and the reply
/// JSON read back by `commhost stats`.
final class ConcurrencyStatsTests: XCTestCase {
    func testHistogramRecordedFromManyThreadsAtOnceCountsEveryCall() {
        let histogram = StatsHistogram()
        let threads = 8, perThread = 50_000
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            Thread {
                for i in 0..<perThread { histogram.record(nanoseconds: UInt64(1 + (i + t) % 1000)) }
                done.leave()
            }.start()
        }
        done.wait()
        let summary = histogram.summary()
        XCTAssertEqual(summary.count, threads * perThread)
        // Each thread records every value 1...1000 fifty times: the mean is exactly 500.5.
        XCTAssertEqual(summary.meanNanoseconds, 500.5, accuracy: 1e-9)
    }

    func testEveryValueFallsInABucketThatContainsIt() {
        var values: [UInt64] = Array(0...300)
        var power: UInt64 = 256
        while power < 1 << 40 {
            values += [power - 1, power, power + 1, power + power / 3]
            power <<= 1
        }
        values.append((1 << 40) - 1)
        var previous = -1
        for value in values.sorted() {
            let bucket = StatsHistogram.bucket(of: value)
            XCTAssertLessThan(bucket, StatsHistogram.bucketCount, "value \(value)")
            XCTAssertGreaterThanOrEqual(bucket, previous, "buckets must grow with the value (\(value))")
            previous = bucket
            let (low, width) = StatsHistogram.range(of: bucket)
            XCTAssertTrue(low <= value && value < low + width, "value \(value) is outside bucket \(bucket) [\(low), \(low + width))")
            // The bucket is at most 1/8 of its lower bound wide: the 6.25 % promise.
            if low >= 8 { XCTAssertLessThanOrEqual(width * 8, low, "bucket \(bucket)") }
        }
        XCTAssertEqual(StatsHistogram.bucket(of: (1 << 40) - 1), StatsHistogram.bucketCount - 1)
    }

    func testPercentilesAreWithinTheBucketError() {
        let histogram = StatsHistogram()
        for value in 1...100_000 { histogram.record(nanoseconds: UInt64(value) * 10) }
        let summary = histogram.summary()
        XCTAssertEqual(summary.count, 100_000)
        XCTAssertEqual(summary.meanNanoseconds, 500_005, accuracy: 1e-6)
        XCTAssertEqual(summary.p50Nanoseconds, 500_000, accuracy: 500_000 * 0.0625)
        XCTAssertEqual(summary.p99Nanoseconds, 990_000, accuracy: 990_000 * 0.0625)
    }

    func testAnEmptyHistogramSummarizesAsZeros() {
        XCTAssertEqual(StatsHistogram().summary(), StatsSnapshot.HandlerTime())
    }

    func testSnapshotJSONReadsBackAsTheSameFigures() throws {
        let snapshot = StatsSnapshot(
            uptimeSeconds: 12.345, sessions: 3, reloads: 2, errors: ["CommExists": 1, "InvalidJSON": 4],
            targets: ["a.echo": .init(open: 2, opened: 7, messagesIn: 40, messagesOut: 41,
                                      handlerTime: .init(count: 47, meanNanoseconds: 2_500, p50Nanoseconds: 2_048, p99Nanoseconds: 9_216)),
                      "b \"quoted\"": .init()])
        let json = snapshot.json
        let decoded = try StatsSnapshot(content: try JSONDocument(parsing: json).root)
        XCTAssertEqual(decoded, snapshot)
        let text = String(decoding: json, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("{\"uptime_s\":12.345,\"sessions\":3,\"reloads\":2,\"open_comms\":{"), text)
        XCTAssertTrue(text.contains("\"handler_time_us\":{\"count\":47,\"mean\":2.500,\"p50\":2.048,\"p99\":9.216}"), text)
    }

    func testAStatsReplyMissingAFieldIsRefusedNamingIt() throws {
        let content = try JSONDocument(parsing: #"{"uptime_s":1.0,"sessions":1,"reloads":0,"open_comms":{},"errors":{}}"#).root
        XCTAssertThrowsError(try StatsSnapshot(content: content)) { error in
            XCTAssertEqual("\(error)", "stats reply: content.targets is missing")
        }
    }
}
