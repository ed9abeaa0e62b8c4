import CommPluginAPI
import XCTest
@testable import CommHost

/// The session's comm table (`CommTable`) against the dictionary it
/// replaced, and the one-allocation names plugins read (`HandleNames`).
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
        var table = CommTable()
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
        var table = CommTable()
        let comms = (0..<1_000).map { comm("id-\($0)") }
        for comm in comms { table[comm.id] = comm }
        for comm in comms.enumerated() where comm.offset.isMultiple(of: 2) { table[comm.element.id] = nil }
        XCTAssertEqual(table.count, 500)
        for comm in comms.enumerated() {
            XCTAssertTrue(table[comm.element.id] === (comm.offset.isMultiple(of: 2) ? nil : comm.element), comm.element.id)
        }
    }

    func testIdsMatchAsTheDictionaryMatchedThem() {
        var table = CommTable()
        let composed = comm("caf\u{E9}")
        table[composed.id] = composed
        XCTAssertTrue(table["cafe\u{301}"] === composed, "canonically equivalent ids are one id, as for String keys")
        XCTAssertNil(table["cafe"])
        XCTAssertNil(table[""])
    }

    func testRemoveAllEmptiesTheTableAndItFillsAgain() {
        var table = CommTable()
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
}
