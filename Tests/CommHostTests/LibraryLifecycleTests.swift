import CommPluginAPI
import Foundation
import Glibc
import XCTest
@testable import CommHost

/// The holes in a library's lifecycle, closed (issue 10 item 8), driven
/// in-process against real dlopened C libraries (Fixtures/race_plugin.c).
final class LibraryLifecycleTests: XCTestCase {
    private var staging: StagingArea!
    private var dir: String!

    override func setUpWithError() throws {
        staging = try StagingArea()
        dir = try TestSupport.temporaryDirectory(self)
    }

    override func tearDown() {
        staging.removeAll()
    }

    private func load(version: Int) throws -> PluginLibrary {
        let path = try TestSupport.compileC(source: TestSupport.fixture("race_plugin.c"), output: "\(dir!)/librace\(version).so",
                                            flags: ["-DVERSION=\(version)", "-pthread"])
        return try PluginLibrary.load(path: path, staging: staging)
    }

    private func function<T>(_ library: PluginLibrary, _ name: String, as type: T.Type) throws -> T {
        let handle = try XCTUnwrap(dlopen(library.stagedPath, RTLD_NOW | RTLD_NOLOAD), "the staged copy is loaded")
        defer { dlclose(handle) }
        return unsafeBitCast(try XCTUnwrap(dlsym(handle, name), name), to: type)
    }

    private func events(_ library: PluginLibrary) throws -> [String] {
        let read = try function(library, "race_events", as: (@convention(c) () -> UnsafePointer<CChar>).self)
        return String(cString: read()).split(separator: ";").map(String.init)
    }

    private func feed(_ session: Session, _ frame: String) {
        var bytes = Array(frame.utf8)
        bytes.withUnsafeMutableBytes { session.receive(UnsafeRawBufferPointer($0), line: 1) }
    }

    func testRetireWaitsForACallInFlightBeforeDeinit() throws {
        let library = try load(version: 1)
        let handler = try XCTUnwrap(library.handler(named: "race"))
        let comm = CommHandle(id: "slow", targetName: "race")
        defer { comm.releaseHandle() }
        let opening = Thread {
            _ = OwnedMessage(data: Array(#"{"slow":true}"#.utf8)).withMessage { try? handler.open(comm: comm, message: $0) }
        }
        opening.start()
        // Wait until the open is inside the plugin, then retire meanwhile.
        let deadline = Date(timeIntervalSinceNow: 10)
        while try events(library).contains("open") == false && Date() < deadline { usleep(1_000) }
        XCTAssertEqual(try events(library), ["open"], "the open is in flight")
        // Retiring unmaps this C library: read the events through a copy kept mapped.
        let keep = dlopen(library.stagedPath, RTLD_NOW | RTLD_NOLOAD)
        defer { if let keep { dlclose(keep) } }
        let read = try function(library, "race_events", as: (@convention(c) () -> UnsafePointer<CChar>).self)
        library.retire()
        XCTAssertEqual(String(cString: read()).split(separator: ";").map(String.init), ["open", "open-end", "deinit"],
                       "deinit ran only after the call in flight returned")
    }

    func testACallIntoARetiredLibraryIsRefusedWithoutReachingIt() throws {
        let library = try load(version: 1)
        let handler = try XCTUnwrap(library.handler(named: "race"))
        let keep = dlopen(library.stagedPath, RTLD_NOW | RTLD_NOLOAD)
        defer { if let keep { dlclose(keep) } }
        let read = try function(library, "race_events", as: (@convention(c) () -> UnsafePointer<CChar>).self)
        library.retire()
        XCTAssertTrue(library.isRetired)
        let comm = CommHandle(id: "late", targetName: "race")
        defer { comm.releaseHandle() }
        do {
            _ = try OwnedMessage.empty.withMessage { message in Result { () throws(PluginCallError) in try handler.open(comm: comm, message: message) } }.get()
            XCTFail("open on a retired library was not refused")
        } catch {
            XCTAssertEqual(error.status, COMMHOST_ECLOSED)
        }
        XCTAssertEqual(String(cString: read()), "deinit", "nothing but deinit reached the library")
    }

    func testNoCommOpenedByAPluginThreadDuringASwapIsLeftWithTheOldLibrary() throws {
        let old = try load(version: 1), new = try load(version: 2)
        let manager = CommManager(targets: TargetTable(["race": try XCTUnwrap(old.handler(named: "race"))]))
        let session = manager.makeSession()
        feed(session, #"{"msg_type":"comm_open","content":{"comm_id":"c0","target_name":"race","data":{}}}"#)
        feed(session, #"{"msg_type":"comm_msg","content":{"comm_id":"c0","data":{"do":"open_loop"}}}"#)
        let opened = try function(old, "race_opened", as: (@convention(c) () -> Int).self)
        let refused = try function(old, "race_refused", as: (@convention(c) () -> Int).self)
        let done = try function(old, "race_loop_done", as: (@convention(c) () -> Int).self)
        // Swap while the plugin's thread is opening comms (after its first few).
        let deadline = Date(timeIntervalSinceNow: 10)
        while opened() < 20 && Date() < deadline { usleep(500) }
        let newHandler = try XCTUnwrap(new.handler(named: "race"))
        _ = try HandlerSwap.run(manager: manager, table: ["race": newHandler]) { comm in
            comm.handler.library === old ? .move(newHandler) : .keep
        }
        while done() == 0 && Date() < deadline { usleep(1_000) }
        XCTAssertEqual(done(), 1, "the plugin's open loop finished")
        XCTAssertGreaterThan(refused(), 0, "opens by the replaced version after the switch were refused with COMMHOST_ECLOSED")
        XCTAssertEqual(opened() + refused(), 400, "every open either succeeded or was refused as closed")
        let left = session.comms(servedBy: { $0.library === old })
        XCTAssertEqual(left.map(\.id), [], "no open comm is served by the replaced library")
        let keep = dlopen(old.stagedPath, RTLD_NOW | RTLD_NOLOAD)
        defer { if let keep { dlclose(keep) } }
        old.retire()
        manager.end(session, cause: .sessionEnded)
        new.retire()
    }
}
