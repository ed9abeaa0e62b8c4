import CommPluginAPI
import XCTest
@testable import CommHost

/// The session's comm table (`CommTable`) against the dictionary it
/// replaced, found by the id's raw bytes exactly as by its `String`
/// (through growth, removals that close up probe runs, and the switch to
/// SipHash), and the one-allocation names plugins read (`HandleNames`).
final class CommTableTests: XCTestCase {
    private var staging: StagingArea!
    private var manager: CommManager!
    private var session: Session!
    private var handler: Handler!

    override func setUpWithError() throws {
        staging = try StagingArea()
        let library = try PluginLibrary.load(path: TestSupport.plugin("Echo"), staging: staging)
        handler = try XCTUnwrap(library.handler(named: "echo"))
        manager = CommManager(targets: TargetTable(["t": handler]))
        session = manager.makeSession()
    }

    override func tearDown() {
        manager.end(session, cause: .sessionEnded)
        staging.removeAll()
    }

    private func comm(_ id: String) -> Comm {
        let comm = Comm(id: id, targetName: "t", session: session, handler: handler)
        comm.releaseHandle()
        return comm
    }

    func testTableAgreesWithADictionaryThroughRandomInsertsLookupsAndRemovals() {
        var table = CommTable<Comm>()
        var reference: [String: Comm] = [:]
        var random = SystemRandomNumberGenerator()
        for step in 0..<20_000 {
            let id = "c\(Int.random(in: 0..<3_000, using: &random))"
            switch step % 3 {
            case 0:
                let made = comm(id)
                table[id] = made
                reference[id] = made
            case 1:
                XCTAssertTrue(table.removeValue(forKey: id) === reference.removeValue(forKey: id), "removing \(id) at step \(step)")
            default:
                XCTAssertTrue(table[id] === reference[id], "looking up \(id) at step \(step)")
            }
            XCTAssertEqual(table.count, reference.count)
        }
        for (id, comm) in reference { XCTAssertTrue(table[id] === comm, "\(id) is still found") }
        XCTAssertEqual(Set(table.values.map(ObjectIdentifier.init)), Set(reference.values.map(ObjectIdentifier.init)))
    }

    func testEveryCommStaysReachableAfterItsProbeNeighboursAreRemoved() {
        var table = CommTable<Comm>()
        let comms = (0..<1_000).map { comm("id-\($0)") }
        for comm in comms { table[comm.id] = comm }
        for comm in comms.enumerated() where comm.offset.isMultiple(of: 2) { table[comm.element.id] = nil }
        XCTAssertEqual(table.count, 500)
        for comm in comms.enumerated() {
            XCTAssertTrue(table[comm.element.id] === (comm.offset.isMultiple(of: 2) ? nil : comm.element), comm.element.id)
        }
    }

    func testRemoveAllEmptiesTheTableAndItFillsAgain() {
        var table = CommTable<Comm>()
        for id in ["a", "b", "c"] { table[id] = comm(id) }
        table.removeAll()
        XCTAssertTrue(table.isEmpty)
        XCTAssertNil(table["a"])
        XCTAssertEqual(table.values.count, 0)
        let again = comm("a")
        table["a"] = again
        XCTAssertTrue(table["a"] === again)
    }

    func testHandleNamesGiveBothNamesAsTheirBytes() {
        let names = HandleNames("comm-\u{1F600}", "jupyter.widget")
        XCTAssertEqual(HostAPI.string(names.firstSlice), "comm-\u{1F600}")
        XCTAssertEqual(HostAPI.string(names.secondSlice), "jupyter.widget")
        let session = HandleNames("17")
        XCTAssertEqual(HostAPI.string(session.firstSlice), "17")
        XCTAssertEqual(session.secondSlice.len, 0)
        XCTAssertNotNil(session.secondSlice.ptr, "an empty name is still a valid pointer")
    }

    // MARK: Lookups by bytes

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
