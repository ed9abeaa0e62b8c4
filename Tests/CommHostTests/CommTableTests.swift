import XCTest
@testable import CommHost

/// The session's comm table: found by the id's raw bytes exactly as by its `String`, through
/// growth, removals that close up probe runs, and the switch to SipHash.
final class CommTableTests: XCTestCase {
    private final class Item: Identifiable {
        let id: String
        init(_ id: String) { self.id = id }
    }

    private func found(_ table: CommTable<Item>, bytes id: String) -> Item? {
        Array(id.utf8).withUnsafeBytes { table[utf8: $0] }
    }

    /// Fills a table, removes every third id, and checks each id by bytes and by `String`.
    /// (The reference dictionary is keyed by bytes: `String` keys would merge canonically
    /// equivalent ids, which the table keeps apart.)
    private func churn(_ table: inout CommTable<Item>, ids: [String]) {
        var items: [[UInt8]: Item] = [:]
        for id in ids {
            let item = Item(id)
            table[id] = item
            items[Array(id.utf8)] = item
        }
        XCTAssertEqual(table.count, items.count)
        for (index, id) in ids.enumerated() where index % 3 == 0 {
            XCTAssertTrue(table.removeValue(forKey: id) === items[Array(id.utf8)], "removed \(id)")
            items[Array(id.utf8)] = nil
        }
        XCTAssertEqual(table.count, items.count)
        for id in ids {
            XCTAssertTrue(found(table, bytes: id) === items[Array(id.utf8)], "by bytes: \(id)")
            XCTAssertTrue(table[id] === items[Array(id.utf8)], "by String: \(id)")
        }
        XCTAssertEqual(Set(table.values.map { Array($0.id.utf8) }), Set(items.keys))
    }

    func testIdsAreFoundByTheirBytesAfterGrowthAndRemovals() {
        var table = CommTable<Item>()
        XCTAssertNil(found(table, bytes: "c1"), "empty table")
        let ids = (0..<5_000).map { "c\($0)" } + ["", "é", "e\u{301}", String(repeating: "x", count: 40), "a\"b"]
        churn(&table, ids: ids)
        XCTAssertNil(found(table, bytes: "c5000"))
        table.removeAll()
        XCTAssertEqual(table.count, 0)
        XCTAssertNil(found(table, bytes: "c1"))
    }

    func testIdsEqualOnlyWhenTheirBytesAre() {
        var table = CommTable<Item>()
        let composed = Item("é"), decomposed = Item("e\u{301}")
        table["é"] = composed
        table["e\u{301}"] = decomposed
        XCTAssertEqual(table.count, 2, "canonically equivalent ids are two comms, as in the comm package")
        XCTAssertTrue(found(table, bytes: "é") === composed)
        XCTAssertTrue(found(table, bytes: "e\u{301}") === decomposed)
        let replacement = Item("é")
        table["é"] = replacement
        XCTAssertEqual(table.count, 2, "setting an existing id replaces it")
        XCTAssertTrue(table["é"] === replacement)
    }

    func testALongProbeRunSwitchesToSipHashAndKeepsEveryComm() {
        var table = CommTable<Item>(longRun: 1)
        churn(&table, ids: (0..<20_000).map { "id-\($0)" })
        XCTAssertTrue(table.usesSipHash, "a collision at a run of 1 counts as long")
        var ordinary = CommTable<Item>()
        churn(&ordinary, ids: (0..<20_000).map { "id-\($0)" })
        XCTAssertFalse(ordinary.usesSipHash, "ordinary ids never make a long run")
    }
}
