import CommPluginAPI
import Foundation
import Glibc
import Synchronization
import XCTest

/// CommPluginKit and the Counter example, through the C ABI only: each test
/// dlopens a uniquely named copy of the built libCounterPlugin.so (or of a
/// probe plugin compiled here, as the host does, never unloaded) and drives
/// its descriptor from a small test host whose per-library function table
/// records everything the plugin calls, counts references per handle, and
/// runs posted tasks and timers only when the test says so.
final class PluginKitTests: XCTestCase {
    private var dir: String!
    /// The libraries this test loaded, torn down after it as the host shuts down.
    private var loaded: [LoadedLibrary] = []

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
        KitTestHost.reset()
    }

    override func tearDown() {
        LoadedLibrary.shutDown(loaded)
        loaded = []
        XCTAssertEqual(KitTestHost.handleErrors(), [], "the plugin used or released a handle it did not hold")
        XCTAssertEqual(KitTestHost.heldReferences(), [], "every comm and session reference was given back by deinit")
        super.tearDown()
    }

    override class func tearDown() {
        ProbePlugin.removeBuilt()
        super.tearDown()
    }

    private func loadCounter() throws -> LoadedLibrary {
        try remember(LoadedLibrary(copyIn: dir))
    }

    private func loadProbe(_ variant: String? = nil) throws -> LoadedLibrary {
        try remember(LoadedLibrary(copyIn: dir, of: ProbePlugin.build(variant: variant)))
    }

    private func remember(_ library: LoadedLibrary) -> LoadedLibrary {
        loaded.append(library)
        return library
    }

    // MARK: Descriptor

    func testDescriptorNamesLibraryVersionABIAndCounterHandler() throws {
        let plugin = try loadCounter().descriptor.pointee
        XCTAssertEqual(plugin.struct_size, MemoryLayout<commhost_plugin>.stride)
        XCTAssertEqual(Int32(plugin.abi_major), COMMHOST_ABI_MAJOR)
        XCTAssertEqual(Int32(plugin.abi_minor), COMMHOST_ABI_MINOR)
        XCTAssertEqual(plugin.flags & COMMHOST_PLUGIN_CONCURRENT, 0, "calls into a Swift plugin are serialized unless it says otherwise")
        XCTAssertEqual(String(cString: plugin.name), "counter")
        XCTAssertEqual(String(cString: plugin.version), "1.0.0")
        XCTAssertNotNil(plugin.`init`)
        XCTAssertNotNil(plugin.`deinit`)
        XCTAssertNotNil(plugin.session_start)
        XCTAssertNotNil(plugin.session_end)
        XCTAssertNotNil(plugin.session_writable)
        XCTAssertEqual(plugin.handler_count, 1)
        let handler = try XCTUnwrap(plugin.handlers?[0]).pointee
        XCTAssertEqual(handler.struct_size, MemoryLayout<commhost_handler>.stride)
        XCTAssertEqual(String(cString: handler.name), "counter")
        XCTAssertNotNil(handler.handler_data, "the kit finds the handler type from handler_data")
        XCTAssertNotNil(handler.open)
        XCTAssertNotNil(handler.message)
        XCTAssertNotNil(handler.close)
        XCTAssertNotNil(handler.snapshot, "Counter adopts SurvivesReload")
        XCTAssertNotNil(handler.restore, "Counter adopts SurvivesReload")
    }

    func testEntryReturnsTheSameDescriptorEveryCall() throws {
        let library = try loadCounter()
        XCTAssertEqual(library.entry(), library.descriptor)
    }

    // MARK: Counter behaviour

    func testIncrementAddsToOpenValueAndSendsUpdate() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: #"{"value": 5}"#)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"increment","by":2}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends(), [.init(comm: "c1", data: #"{"method":"update","state":{"value":7}}"#)])
    }

    func testRequestStateSendsCurrentValueWithoutChangingIt() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: #"{"value": 5}"#)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"increment","by":2}"#), COMMHOST_OK)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"request_state"}"#), COMMHOST_OK)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"request_state"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().map(\.data), Array(repeating: #"{"method":"update","state":{"value":7}}"#, count: 3))
    }

    func testOpenWithoutValueStartsAtZero() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"request_state"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().map(\.data), [#"{"method":"update","state":{"value":0}}"#])
    }

    func testUnknownMethodGetsErrorMessageNamingIt() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"explode"}"#), COMMHOST_OK)
        let reply = try XCTUnwrap(KitTestHost.sends().first).json()
        XCTAssertEqual(reply["method"] as? String, "error")
        XCTAssertTrue((reply["message"] as? String ?? "").contains("\"explode\""), "\(reply)")
    }

    func testMessageWithoutMethodGetsErrorMessage() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"by":1}"#), COMMHOST_OK)
        let reply = try XCTUnwrap(KitTestHost.sends().first).json()
        XCTAssertEqual(reply["method"] as? String, "error")
        XCTAssertTrue((reply["message"] as? String ?? "").contains("no \"method\""), "\(reply)")
    }

    func testIncrementWithNonIntegerOrMissingByGetsErrorMessageAndKeepsValue() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: #"{"value": 3}"#)
        let cases = [
            (#"{"method":"increment","by":"two"}"#, "the string \"two\""),
            (#"{"method":"increment","by":1.5}"#, "the number 1.5"),
            (#"{"method":"increment"}"#, "missing"),
        ]
        for (data, _) in cases {
            XCTAssertEqual(library.message(instance, comm, data: data), COMMHOST_OK)
        }
        let replies = try KitTestHost.sends().map { try $0.json() }
        XCTAssertEqual(replies.count, cases.count)
        for (reply, (data, expected)) in zip(replies, cases) {
            XCTAssertEqual(reply["method"] as? String, "error", data)
            let message = reply["message"] as? String ?? ""
            XCTAssertTrue(message.contains("\"by\"") && message.contains(expected), "\(data) -> \(message)")
        }
        KitTestHost.reset(keepingHandles: true)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"request_state"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().map(\.data), [#"{"method":"update","state":{"value":3}}"#])
    }

    // MARK: Errors at the boundary

    func testOpenWithNonIntegerValueFailsWithStatusAndErrorText() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let (status, instance) = library.openStatus(comm, data: #"{"value": "five"}"#)
        XCTAssertEqual(status, COMMHOST_EINVAL)
        XCTAssertNil(instance)
        let error = try XCTUnwrap(KitTestHost.errors().last)
        XCTAssertTrue(error.contains("value"), error)
        XCTAssertEqual(KitTestHost.references(comm), 0, "a refused open keeps no reference to the comm")
        XCTAssertTrue(KitTestHost.sends().isEmpty)
    }

    func testSendOnClosedCommFailsTheCallbackWithClosedStatusAndText() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: "{}")
        KitTestHost.markClosed(comm)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"request_state"}"#), COMMHOST_ECLOSED)
        let error = try XCTUnwrap(KitTestHost.errors().last)
        XCTAssertTrue(error.contains("\"c1\"") && error.contains("closed"), error)
    }

    func testSendUnderBackpressureFailsWithTheBackpressureStatusAndSaysWhatToDo() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: "{}")
        KitTestHost.setBackpressure(true)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"request_state"}"#), COMMHOST_EAGAIN)
        let error = try XCTUnwrap(KitTestHost.errors().last)
        XCTAssertTrue(error.contains("COMMHOST_EAGAIN") && error.contains("sessionWritable"), error)
        XCTAssertTrue(KitTestHost.sends().isEmpty)
        KitTestHost.setBackpressure(false)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"request_state"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().count, 1)
    }

    func testInitRefusesHostOfAnotherABIMajorWithErrorText() throws {
        let library = try loadCounter()
        var library2: UnsafeMutableRawPointer?
        let table = KitTestHost.makeTable(abiMajor: 2)
        defer { table.deallocate() }
        let status = library.descriptor.pointee.`init`!(table, commhost_str(ptr: nil, len: 0), &library2)
        XCTAssertEqual(status, COMMHOST_EUNSUPPORTED)
        XCTAssertNil(library2)
        XCTAssertTrue(try XCTUnwrap(KitTestHost.errors().last).contains("ABI 1"))
    }

    func testInitRefusesATableShorterThanABI10() throws {
        let library = try loadCounter()
        var library2: UnsafeMutableRawPointer?
        let table = KitTestHost.makeTable(structSize: MemoryLayout<commhost_host>.offset(of: \.post)!)
        defer { table.deallocate() }
        XCTAssertEqual(library.descriptor.pointee.`init`!(table, commhost_str(ptr: nil, len: 0), &library2), COMMHOST_EUNSUPPORTED)
        XCTAssertNil(library2)
        XCTAssertTrue(try XCTUnwrap(KitTestHost.errors().last).contains("smaller than ABI 1.0"))
    }

    // MARK: Lifecycle and references

    func testCloseRunsOnceAndGivesBackTheCommReference() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let instance = try library.open(comm, data: #"{"value": 1}"#)
        XCTAssertEqual(KitTestHost.references(comm), 1, "the open instance holds the comm")
        library.close(instance, comm, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(KitTestHost.references(comm), 0, "close freed the instance and its comm")
        XCTAssertTrue(KitTestHost.sends().isEmpty)
        XCTAssertTrue(KitTestHost.errors().isEmpty)
    }

    func testSessionReferenceIsHeldFromSessionStartUntilSessionEnd() throws {
        let library = try loadCounter().initialized()
        let session = KitTestHost.makeSession(id: "s1")
        XCTAssertEqual(library.startSession(session, cause: COMMHOST_SESSION_STARTED), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.references(session), 1)
        let comm = KitTestHost.makeComm(id: "c1", in: session)
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(KitTestHost.references(session), 1, "the comm shares the session's one object")
        library.close(instance, comm, cause: COMMHOST_CLOSE_SESSION_ENDED)
        library.endSession(session, cause: COMMHOST_SESSION_ENDED)
        XCTAssertEqual(KitTestHost.references(session), 0)
        XCTAssertEqual(KitTestHost.references(comm), 0)
    }

    func testSnapshotAndRestoreInNewCopyCarryTheValueWithEqualBytes() throws {
        let old = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let oldInstance = try old.open(comm, data: #"{"value": 5}"#)
        XCTAssertEqual(old.message(oldInstance, comm, data: #"{"method":"increment","by":4}"#), COMMHOST_OK)
        let (snapshotStatus, state) = old.snapshot(oldInstance, comm)
        XCTAssertEqual(snapshotStatus, COMMHOST_OK)
        XCTAssertEqual(String(decoding: state, as: UTF8.self), #"{"value":9}"#)

        let new = try loadCounter().initialized()
        XCTAssertNotEqual(new.descriptor, old.descriptor)
        let (restoreStatus, restored) = new.restore(comm, fromVersion: "1.0.0", state: state)
        XCTAssertEqual(restoreStatus, COMMHOST_OK)
        let newInstance = try XCTUnwrap(restored)
        let (againStatus, again) = new.snapshot(newInstance, comm)
        XCTAssertEqual(againStatus, COMMHOST_OK)
        XCTAssertEqual(again, state, "the round trip gives the same bytes")

        KitTestHost.reset(keepingHandles: true)
        XCTAssertEqual(new.message(newInstance, comm, data: #"{"method":"increment","by":1}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().map(\.data), [#"{"method":"update","state":{"value":10}}"#])
        XCTAssertEqual(KitTestHost.references(comm), 2, "old and new instance each hold the comm")
    }

    func testRetiringOldLibraryAfterHandOffDropsTheOldInstance() throws {
        let old = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let oldInstance = try old.open(comm, data: #"{"value": 5}"#)
        let (_, state) = old.snapshot(oldInstance, comm)
        let new = try loadCounter().initialized()
        let newInstance = try XCTUnwrap(new.restore(comm, fromVersion: "1.0.0", state: state).instance)
        XCTAssertEqual(KitTestHost.references(comm), 2)
        old.deinitialize()
        XCTAssertEqual(KitTestHost.references(comm), 1, "the handed-off instance was dropped at deinit")
        XCTAssertEqual(KitTestHost.references(KitTestHost.defaultSession), 1, "the old library gave back its session reference")
        new.close(newInstance, comm, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(KitTestHost.references(comm), 0)
        new.deinitialize()
        XCTAssertEqual(KitTestHost.references(KitTestHost.defaultSession), 0)
    }

    func testAbandonedHandOffClosesOldInstanceOnceWithReloadCause() throws {
        let old = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let oldInstance = try old.open(comm, data: "{}")
        XCTAssertEqual(old.snapshot(oldInstance, comm).status, COMMHOST_OK)
        old.close(oldInstance, comm, cause: COMMHOST_CLOSE_RELOAD)
        XCTAssertEqual(KitTestHost.references(comm), 0)
        old.deinitialize()
        XCTAssertEqual(KitTestHost.references(comm), 0, "deinit does not drop the closed instance a second time")
    }

    func testRestoreRejectsUnreadableStateWithStateStatus() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        for bytes in [Array("not json".utf8), Array(#"{"count":3}"#.utf8), []] {
            let (status, instance) = library.restore(comm, fromVersion: "1.0.0", state: bytes)
            XCTAssertEqual(status, COMMHOST_ESTATE)
            XCTAssertNil(instance)
            XCTAssertTrue(try XCTUnwrap(KitTestHost.errors().last).contains("saved state"))
        }
        XCTAssertEqual(KitTestHost.references(comm), 0)
    }

    func testTwoLoadedCopiesServeTheirOwnComms() throws {
        let first = try loadCounter().initialized()
        let second = try loadCounter().initialized()
        XCTAssertNotEqual(first.descriptor, second.descriptor)
        let a = KitTestHost.makeComm(id: "a")
        let b = KitTestHost.makeComm(id: "b")
        let instanceA = try first.open(a, data: #"{"value": 100}"#)
        let instanceB = try second.open(b, data: #"{"value": 200}"#)
        XCTAssertEqual(first.message(instanceA, a, data: #"{"method":"increment","by":1}"#), COMMHOST_OK)
        XCTAssertEqual(second.message(instanceB, b, data: #"{"method":"increment","by":2}"#), COMMHOST_OK)
        first.close(instanceA, a, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(second.message(instanceB, b, data: #"{"method":"request_state"}"#), COMMHOST_OK)
        second.close(instanceB, b, cause: COMMHOST_CLOSE_SESSION_ENDED)
        XCTAssertEqual(KitTestHost.sends(), [
            .init(comm: "a", data: #"{"method":"update","state":{"value":101}}"#),
            .init(comm: "b", data: #"{"method":"update","state":{"value":202}}"#),
            .init(comm: "b", data: #"{"method":"update","state":{"value":202}}"#),
        ])
        XCTAssertEqual(KitTestHost.sends().map(\.library), [first.number, second.number, second.number],
                       "each copy calls through its own table")
        XCTAssertEqual(KitTestHost.references(a), 0)
        XCTAssertEqual(KitTestHost.references(b), 0)
        first.deinitialize()
        second.deinitialize()
    }

    // MARK: The kit with several handler types (the probe plugin, compiled here)

    func testLibraryWithSeveralHandlerTypesOpensEachAsItsOwnType() throws {
        let library = try loadProbe().initialized()
        let plugin = library.descriptor.pointee
        XCTAssertEqual((0..<plugin.handler_count).map { String(cString: plugin.handlers![$0]!.pointee.name) },
                       ["probe", "second", "greeter", "tally"])
        library.use(handler: "second")
        let comm = KitTestHost.makeComm(id: "s1")
        _ = try library.open(comm, data: "{}")
        XCTAssertEqual(KitTestHost.sends(), [.init(comm: "s1", data: #"{"method":"opened","text":"second"}"#)])
    }

    func testTwentyHandlerTypesInOneLibraryEachOpenAsTheirOwnType() throws {
        let library = try loadProbe("MANY_HANDLERS").initialized()
        let plugin = library.descriptor.pointee
        XCTAssertEqual(plugin.handler_count, 20, "no cap on handlers per library")
        let handlers = (0..<plugin.handler_count).map { plugin.handlers![$0]! }
        XCTAssertEqual(Set(handlers.map { $0.pointee.open.map { unsafeBitCast($0, to: UnsafeRawPointer.self) } }).count, 1,
                       "one open function serves every handler")
        XCTAssertEqual(Set(handlers.compactMap(\.pointee.handler_data)).count, 20, "each handler has its own handler_data")
        for index in (0..<20).reversed() {
            library.use(handler: "numbered\(index)")
            let comm = KitTestHost.makeComm(id: "n\(index)")
            let instance = try library.open(comm, data: "{}")
            library.close(instance, comm, cause: COMMHOST_CLOSE_CLIENT)
        }
        XCTAssertEqual(KitTestHost.sends().map(\.data), (0..<20).reversed().map { #"{"method":"opened","text":"numbered\#($0)"}"# })
        XCTAssertEqual(KitTestHost.logs(), (0..<20).reversed().map { "\(COMMHOST_LOG_INFO) closed numbered\($0) client" })
    }

    func testHandlerWithoutHandOffHasNoSnapshotOrRestore() throws {
        let plugin = try loadProbe().descriptor.pointee
        XCTAssertNil(plugin.handlers![0]!.pointee.snapshot)
        XCTAssertNil(plugin.handlers![0]!.pointee.restore)
    }

    func testConcurrentExportSetsTheConcurrentFlag() throws {
        let plugin = try loadProbe().descriptor.pointee
        XCTAssertEqual(plugin.flags & COMMHOST_PLUGIN_CONCURRENT, COMMHOST_PLUGIN_CONCURRENT)
    }

    func testDuplicateHandlerNamesMakeTheEntryReturnNull() throws {
        let path = try ProbePlugin.build(variant: "DUPLICATE_NAMES")
        XCTAssertNil(try LoadedLibrary.load(copyIn: dir, of: path))
    }

    func testMessageDataMetadataAndBuffersArriveAndSendByteForByte() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        let data = #"{"method": "echo", "x": [1, 2.5, "é"]}"#
        let metadata = #"{"version": "2.1.0"}"#
        let buffers: [[UInt8]] = [[0, 1, 2, 255], [], Array(repeating: 7, count: 64)]
        XCTAssertEqual(library.message(instance, comm, data: data, metadata: metadata, buffers: buffers), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends(), [.init(comm: "p1", data: data, metadata: metadata, buffers: buffers)])
    }

    func testCommReportsIdTargetAndLibraryConfiguration() throws {
        let library = try loadProbe().initialized(config: #"{"greeting":"hi"}"#)
        let comm = KitTestHost.makeComm(id: "p1", target: "probe.target")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"whoami"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().map(\.data), [#"{"method":"whoami","text":"p1 probe.target {\"greeting\":\"hi\"}"}"#])
    }

    func testPluginErrorSetsItsStatusAndText() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"fail_status"}"#), COMMHOST_ELIMIT)
        XCTAssertEqual(KitTestHost.errors(), ["too big, as asked"])
    }

    func testOtherThrownErrorFailsWithEFAILAndItsDescription() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"fail_other"}"#), COMMHOST_EFAIL)
        XCTAssertEqual(KitTestHost.errors(), ["probe failed in its own way"])
    }

    func testOpenThrowingPluginErrorReturnsItsStatusAndKeepsNoInstance() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let (status, instance) = library.openStatus(comm, data: #"{"refuse":true}"#)
        XCTAssertEqual(status, COMMHOST_ELIMIT)
        XCTAssertNil(instance)
        XCTAssertEqual(KitTestHost.errors(), ["refused as asked"])
        XCTAssertEqual(KitTestHost.references(comm), 0)
    }

    func testSendOfNonObjectDataReportsTheHostsJSONStatus() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"bad_json"}"#), COMMHOST_EJSON)
        XCTAssertTrue(try XCTUnwrap(KitTestHost.errors().last).contains("JSON object"))
    }

    func testPluginCloseSendsCloseWithEncodedData() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"close"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.closes(), [.init(comm: "p1", data: #"{"method":"bye","text":"closing"}"#)])
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"close"}"#), COMMHOST_ECLOSED, "a second close is refused")
    }

    func testCloseCauseReachesTheHandler() throws {
        let library = try loadProbe().initialized()
        let causes: [(commhost_close_cause, String)] = [
            (COMMHOST_CLOSE_CLIENT, "client"), (COMMHOST_CLOSE_PLUGIN, "plugin"),
            (COMMHOST_CLOSE_SESSION_ENDED, "sessionEnded"), (COMMHOST_CLOSE_SHUTDOWN, "shutdown"),
            (COMMHOST_CLOSE_REMOVED, "removed"), (COMMHOST_CLOSE_RELOAD, "reload"), (99, "other(99)"),
        ]
        for (cause, _) in causes {
            let comm = KitTestHost.makeComm(id: "p1")
            let instance = try library.open(comm, data: "{}")
            library.close(instance, comm, cause: cause, data: #"{"bye":1}"#)
        }
        XCTAssertEqual(KitTestHost.logs(), causes.map { "\(COMMHOST_LOG_INFO) closed: \($0.1) {\"bye\":1}" })
    }

    func testHandlerLogReachesHostLogWithLevel() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"log"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.logs(), ["\(COMMHOST_LOG_WARNING) probe says hi"])
        XCTAssertEqual(KitTestHost.logLibraries(), [library.number], "the log line comes through the library's own table")
    }

    func testCommKeptPastCloseHoldsItsReferenceAndSendsGetClosedStatus() throws {
        let library = try loadProbe().initialized()
        let kept = KitTestHost.makeComm(id: "kept")
        let keptInstance = try library.open(kept, data: "{}")
        XCTAssertEqual(library.message(keptInstance, kept, data: #"{"method":"keep"}"#), COMMHOST_OK)
        KitTestHost.markClosed(kept)
        library.close(keptInstance, kept, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(KitTestHost.references(kept), 1, "the kept Comm still holds the handle")

        let other = KitTestHost.makeComm(id: "other")
        let instance = try library.open(other, data: "{}")
        XCTAssertEqual(library.message(instance, other, data: #"{"method":"send_kept"}"#), COMMHOST_ECLOSED)
        XCTAssertTrue(try XCTUnwrap(KitTestHost.errors().last).contains("\"kept\""))
        XCTAssertEqual(library.message(instance, other, data: #"{"method":"drop_kept"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.references(kept), 0, "dropping the last Comm gives the reference back")
    }

    func testCommSendsFromAnotherThread() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"send_from_thread"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends(), [.init(comm: "p1", data: #"{"method":"thread","text":"sent from another thread"}"#)])
    }

    // MARK: Sessions and the library type

    func testSessionStartAndEndReachTheLibraryWithPerSessionState() throws {
        let library = try loadProbe().initialized()
        let first = KitTestHost.makeSession(id: "s1"), second = KitTestHost.makeSession(id: "s2")
        XCTAssertEqual(library.startSession(first, cause: COMMHOST_SESSION_STARTED), COMMHOST_OK)
        XCTAssertEqual(library.startSession(second, cause: COMMHOST_SESSION_STARTED), COMMHOST_OK)
        XCTAssertNotNil(KitTestHost.sessionData(first, library: library.number), "session_start sets session data")
        let a = KitTestHost.makeComm(id: "a", in: first), b = KitTestHost.makeComm(id: "b", in: first)
        let c = KitTestHost.makeComm(id: "c", in: second)
        let instances = try [a, b, c].map { try library.open($0, data: "{}") }
        for (instance, comm) in [(instances[0], a), (instances[1], b), (instances[0], a), (instances[2], c)] {
            XCTAssertEqual(library.message(instance, comm, data: #"{"method":"visit"}"#), COMMHOST_OK)
        }
        XCTAssertEqual(KitTestHost.sends().map(\.data), ["1", "2", "3", "1"].map { #"{"method":"visits","text":"\#($0)"}"# },
                       "the comms of one session share its state; another session has its own")
        for (instance, comm) in zip(instances, [a, b, c]) {
            library.close(instance, comm, cause: COMMHOST_CLOSE_SESSION_ENDED)
        }
        library.endSession(first, cause: COMMHOST_SESSION_ENDED)
        library.endSession(second, cause: COMMHOST_SESSION_SHUTDOWN)
        library.deinitialize()
        let info = COMMHOST_LOG_INFO
        XCTAssertEqual(KitTestHost.logs().filter { !$0.contains("closed") }, [
            "\(info) started s1 started", "\(info) started s2 started",
            "\(info) ended s1 ended visits=3", "\(info) ended s2 shutdown visits=1", "\(info) shutdown",
        ])
        XCTAssertEqual(KitTestHost.references(first), 0)
        XCTAssertEqual(KitTestHost.references(second), 0)
    }

    func testSessionStartOpensACommTowardTheClientServedByTheNamedHandler() throws {
        let library = try loadProbe().initialized(config: #"{"greet":true}"#)
        let session = KitTestHost.makeSession(id: "s1")
        XCTAssertEqual(library.startSession(session, cause: COMMHOST_SESSION_STARTED), COMMHOST_OK)
        let open = try XCTUnwrap(KitTestHost.opens().first)
        XCTAssertEqual(KitTestHost.opens().count, 1)
        XCTAssertEqual(open.library, library.number)
        XCTAssertEqual(open.session, "s1")
        XCTAssertEqual(open.handler, "greeter")
        XCTAssertEqual(open.target, "probe.greeting")
        XCTAssertEqual(open.commID, "", "no id given: the host makes one")
        XCTAssertEqual(open.data, #"{"hello":"s1"}"#)
        let comm = open.comm
        XCTAssertEqual(KitTestHost.sends(), [.init(comm: KitTestHost.commID(comm), data: #"{"method":"greeted","text":"{\"hello\":\"s1\"}"}"#)],
                       "the instance exists and can send as soon as open returns")
        XCTAssertEqual(KitTestHost.references(comm), 1, "the reference open handed over, not retained again")

        let instance = try XCTUnwrap(open.instance)
        library.use(handler: "greeter")
        XCTAssertEqual(library.message(instance, comm, data: #"{"ping":1}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().last?.data, #"{"ping":1}"#, "the client's messages reach the instance")
        library.close(instance, comm, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(KitTestHost.references(comm), 0)
        XCTAssertTrue(KitTestHost.logs().contains("\(COMMHOST_LOG_INFO) greeter closed: client"))

        let resumed = KitTestHost.makeSession(id: "s2")
        XCTAssertEqual(library.startSession(resumed, cause: COMMHOST_SESSION_RESUMED), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.opens().count, 1, "a resumed session is not greeted again")
        library.endSession(session, cause: COMMHOST_SESSION_ENDED)
        library.endSession(resumed, cause: COMMHOST_SESSION_ENDED)
    }

    func testOpenTowardTheClientRefusedByTheHostFailsSessionStartWithItsStatus() throws {
        let library = try loadProbe().initialized(config: #"{"greet":true}"#)
        let session = KitTestHost.makeSession(id: "s1")
        KitTestHost.setBackpressure(true)
        XCTAssertEqual(library.startSession(session, cause: COMMHOST_SESSION_STARTED), COMMHOST_EAGAIN)
        XCTAssertTrue(try XCTUnwrap(KitTestHost.errors().last).contains("\"greeter\""))
        XCTAssertTrue(KitTestHost.opens().isEmpty)
        library.endSession(session, cause: COMMHOST_SESSION_ENDED)
        XCTAssertEqual(KitTestHost.references(session), 0)
    }

    func testOpenAndSessionStateOffTheSerializedContextAreRefused() throws {
        let library = try loadProbe().initialized()
        let session = KitTestHost.makeSession(id: "s1")
        XCTAssertEqual(library.startSession(session, cause: COMMHOST_SESSION_STARTED), COMMHOST_OK)
        let comm = KitTestHost.makeComm(id: "p1", in: session)
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"from_thread"}"#), COMMHOST_OK)
        let texts = try KitTestHost.sends().map { try $0.json()["text"] as? String ?? "" }
        XCTAssertEqual(texts.count, 2)
        XCTAssertTrue(texts[0].contains("off the session's serialized context"), texts[0])
        XCTAssertTrue(texts[1].contains("off its serialized context"), texts[1])
        XCTAssertTrue(KitTestHost.opens().isEmpty)
    }

    func testOpenTowardTheClientWhoseInstanceThrowsClosesTheNewCommAndRethrows() throws {
        let library = try loadProbe().initialized()
        let session = KitTestHost.makeSession(id: "s1")
        XCTAssertEqual(library.startSession(session, cause: COMMHOST_SESSION_STARTED), COMMHOST_OK)
        let comm = KitTestHost.makeComm(id: "p1", in: session)
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"open_failing"}"#), COMMHOST_ELIMIT)
        XCTAssertEqual(KitTestHost.errors().last, "no greeter today")
        let open = try XCTUnwrap(KitTestHost.opens().first)
        XCTAssertEqual(KitTestHost.closes().map(\.comm), [KitTestHost.commID(open.comm)], "the kit closed the comm it could not serve")
        library.use(handler: "greeter")
        library.close(try XCTUnwrap(open.instance), open.comm, cause: COMMHOST_CLOSE_PLUGIN)
        XCTAssertEqual(KitTestHost.references(open.comm), 0, "its close callback gave back the reference from open")
        XCTAssertFalse(KitTestHost.logs().contains { $0.contains("greeter closed") }, "there was no instance to tell")
    }

    func testSessionWritableReachesTheLibrary() throws {
        let library = try loadProbe().initialized()
        let session = KitTestHost.makeSession(id: "s1")
        XCTAssertEqual(library.startSession(session, cause: COMMHOST_SESSION_STARTED), COMMHOST_OK)
        library.sessionWritable(session)
        XCTAssertEqual(KitTestHost.logs().last, "\(COMMHOST_LOG_INFO) writable s1")
    }

    func testCommReachesItsLibraryType() throws {
        let library = try loadProbe().initialized(config: #"{"greet":false}"#)
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"library"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().map(\.data), [#"{"method":"library","text":"ProbeLibrary greet=false"}"#])
    }

    // MARK: Post and timers

    func testPostedTaskRunsOnlyWhenTheHostRunsItAndItsBoxIsReleasedOnce() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"post"}"#), COMMHOST_OK)
        XCTAssertTrue(KitTestHost.sends().isEmpty, "post does not run the task itself")
        XCTAssertEqual(KitTestHost.pendingTasks(), 1)
        XCTAssertEqual(KitTestHost.releasedTokens(), [])
        XCTAssertEqual(KitTestHost.drain(), 1)
        XCTAssertEqual(KitTestHost.sends(), [.init(comm: "p1", data: #"{"method":"posted","text":"p1"}"#)])
        XCTAssertEqual(KitTestHost.releasedTokens(), ["post"], "the task's box is freed after its one call")
    }

    func testPostedTaskOfAClosedCommDoesNotRunAndItsBoxIsReleasedOnce() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"post"}"#), COMMHOST_OK)
        KitTestHost.markClosed(comm)
        XCTAssertEqual(KitTestHost.releasedTokens(), ["post"], "the COMMHOST_ECLOSED call is the last one")
        library.close(instance, comm, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(KitTestHost.drain(), 0)
        XCTAssertTrue(KitTestHost.sends().isEmpty)
        XCTAssertEqual(KitTestHost.references(comm), 0)
    }

    func testTaskTypedForAnotherHandlerIsLoggedNotRun() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"post_wrong_type"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.drain(), 1)
        let line = try XCTUnwrap(KitTestHost.logs().last)
        XCTAssertTrue(line.hasPrefix("\(COMMHOST_LOG_ERROR) ") && line.contains("takes a Second") && line.contains("Probe"), line)
    }

    func testOneShotTimerRunsWhenTheHostFiresItThenReleasesItsBox() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"timer_once"}"#), COMMHOST_OK)
        let timer = try XCTUnwrap(KitTestHost.timers().first)
        XCTAssertEqual(timer.delay, 250)
        XCTAssertEqual(timer.period, 0)
        XCTAssertEqual(timer.comm, "p1")
        XCTAssertTrue(KitTestHost.sends().isEmpty)
        KitTestHost.fire(timer.id)
        XCTAssertEqual(KitTestHost.sends().map(\.data), [#"{"method":"tick","text":"once"}"#])
        XCTAssertEqual(KitTestHost.releasedTokens(), ["once"], "a one-shot timer's OK call is its last")
    }

    func testRepeatingTimerRunsEachPeriodUntilCancelledThenReleasesItsBoxOnce() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"timer_every"}"#), COMMHOST_OK)
        let timer = try XCTUnwrap(KitTestHost.timers().first)
        XCTAssertEqual(timer.delay, 1000)
        XCTAssertEqual(timer.period, 2000)
        for _ in 0..<3 { KitTestHost.fire(timer.id) }
        XCTAssertEqual(KitTestHost.sends().map(\.data), Array(repeating: #"{"method":"tick","text":"every"}"#, count: 3))
        XCTAssertEqual(KitTestHost.releasedTokens(), [])
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"cancel_timer"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.drain(), 1, "the COMMHOST_ECANCELED call")
        XCTAssertEqual(KitTestHost.releasedTokens(), ["every"])
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"cancel_timer"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().suffix(2).map(\.data), [#"{"method":"canceled","text":"true"}"#, #"{"method":"canceled","text":"false"}"#])
        XCTAssertEqual(KitTestHost.sends().count, 5, "no run after cancel")
    }

    func testRepeatingTimerEndsWhenItsCommCloses() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"timer_every"}"#), COMMHOST_OK)
        let timer = try XCTUnwrap(KitTestHost.timers().first)
        KitTestHost.fire(timer.id)
        KitTestHost.markClosed(comm)
        XCTAssertEqual(KitTestHost.releasedTokens(), ["every"])
        library.close(instance, comm, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(KitTestHost.references(comm), 0)
    }

    func testSessionTaskRunsOnTheSessionContextWithItsState() throws {
        let library = try loadProbe().initialized(config: #"{"post":true}"#)
        let session = KitTestHost.makeSession(id: "s1")
        XCTAssertEqual(library.startSession(session, cause: COMMHOST_SESSION_STARTED), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.pendingTasks(), 1)
        XCTAssertEqual(KitTestHost.drain(), 1)
        XCTAssertEqual(KitTestHost.logs().last, "\(COMMHOST_LOG_INFO) session task s1 visits=0")
        library.endSession(session, cause: COMMHOST_SESSION_ENDED)
        XCTAssertEqual(KitTestHost.references(session), 0, "the task's box gave back its hold on the session")
    }

    // MARK: Hand-off across versions

    func testRestoreReceivesFromVersionAndMigratesAnOlderFormat() throws {
        let library = try loadProbe().initialized()
        library.use(handler: "tally")
        let comm = KitTestHost.makeComm(id: "t1")
        let old = Array(#"{"n":4}"#.utf8)
        let (status, restored) = library.restore(comm, fromVersion: "0.0.9", state: old)
        XCTAssertEqual(status, COMMHOST_OK, "\(KitTestHost.errors())")
        let instance = try XCTUnwrap(restored)
        XCTAssertEqual(library.message(instance, comm, data: "{}"), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().map(\.data), [#"{"method":"count","text":"4"}"#])
        XCTAssertEqual(String(decoding: library.snapshot(instance, comm).state, as: UTF8.self), #"{"count":4}"#,
                       "the migrated state is written in the current format")

        let (sameStatus, same) = library.restore(comm, fromVersion: "0.1.0", state: old)
        XCTAssertEqual(sameStatus, COMMHOST_ESTATE, "the current version does not read the old format")
        XCTAssertNil(same)
        XCTAssertTrue(try XCTUnwrap(KitTestHost.errors().last).contains("count"))
        library.close(instance, comm, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(KitTestHost.references(comm), 0)
    }
}

/// A Swift plugin built here with swiftc against the CommPluginKit the
/// package built, to reach the kit's features that Counter does not use: a
/// library type with configuration, per-session state and session
/// callbacks, a comm opened toward the client, several handler types (twenty
/// in the MANY_HANDLERS variant), metadata and buffers, errors of each kind,
/// close causes, the log, posted tasks and timers, a hand-off that migrates
/// an older state format, and a Comm kept past its close.
private enum ProbePlugin {
    /// Twenty handler types that differ only by name.
    static let numbered = (0..<20).map { index in
        """
        final class Numbered\(index): CommHandler {
            static let handlerName = "numbered\(index)"
            let comm: Comm
            init(comm: Comm, open message: CommMessage) throws {
                self.comm = comm
                try comm.send(json: Reply(method: "opened", text: Self.handlerName))
            }
            func close(cause: CloseCause, message: CommMessage) {
                comm.host.log(.info, "closed \\(Self.handlerName) \\(cause)")
            }
        }
        """
    }.joined(separator: "\n")

    static let source = #"""
    import CommPluginKit
    import Dispatch
    import Synchronization

    /// Comms kept past their close by the "keep" method.
    let kept = Mutex<[Comm]>([])
    /// Timers started by "timer_every", by comm id.
    let timers = Mutex<[String: HostTimer]>([:])

    struct Reply: Encodable {
        var method: String
        var text: String
    }

    struct ProbeFailure: Error, CustomStringConvertible {
        var description: String { "probe failed in its own way" }
    }

    /// Logs "released NAME" when freed, so a test sees a task's box go exactly once.
    final class Token: Sendable {
        let host: PluginHost
        let name: String
        init(_ host: PluginHost, _ name: String) {
            self.host = host
            self.name = name
        }
        deinit { host.log(.debug, "released \(name)") }
    }

    /// Per-session state: how often the session's comms were visited.
    final class Visits {
        var count = 0
    }

    final class ProbeLibrary: CommLibrary {
        struct Config: Decodable {
            var greet: Bool?
            var post: Bool?
        }
        let host: PluginHost
        let greet: Bool
        let post: Bool

        init(host: PluginHost) throws {
            self.host = host
            let config = try? host.decodeConfiguration(Config.self)
            greet = config?.greet ?? false
            post = config?.post ?? false
        }

        func sessionStarted(_ session: Session, cause: SessionCause) throws -> Visits {
            host.log(.info, "started \(session.id) \(cause)")
            if greet && cause == .started {
                try session.open(Greeter.self, target: "probe.greeting", CommMessage(json: ["hello": session.id]))
            }
            if post {
                let host = self.host
                try session.post {
                    host.log(.info, "session task \(session.id) visits=\(try session.state(as: Visits.self).count)")
                }
            }
            return Visits()
        }

        func sessionEnded(_ session: Session, cause: SessionCause) {
            let visits = (try? session.state(as: Visits.self))?.count ?? -1
            host.log(.info, "ended \(session.id) \(cause) visits=\(visits)")
        }

        func sessionWritable(_ session: Session) {
            host.log(.info, "writable \(session.id)")
        }

        func shutdown() {
            host.log(.info, "shutdown")
        }
    }

    final class Probe: CommHandler {
        static let handlerName = "probe"
        let comm: Comm

        init(comm: Comm, open message: CommMessage) throws {
            struct Open: Decodable { var refuse: Bool? }
            self.comm = comm
            if try message.decode(Open.self).refuse == true {
                throw PluginError(.limitExceeded, "refused as asked")
            }
        }

        func receive(_ message: CommMessage) throws {
            struct Request: Decodable { var method: String }
            switch try message.decode(Request.self).method {
            case "echo":
                try comm.send(message)
            case "whoami":
                let config = String(decoding: comm.host.configuration, as: UTF8.self)
                try comm.send(json: Reply(method: "whoami", text: "\(comm.id) \(comm.targetName) \(config)"))
            case "library":
                let library = try comm.library(as: ProbeLibrary.self)
                try comm.send(json: Reply(method: "library", text: "\(type(of: library)) greet=\(library.greet)"))
            case "visit":
                let visits = try comm.session.state(as: Visits.self)
                visits.count += 1
                try comm.send(json: Reply(method: "visits", text: "\(visits.count)"))
            case "log":
                comm.host.log(.warning, "probe says hi")
            case "fail_status":
                throw PluginError(.limitExceeded, "too big, as asked")
            case "fail_other":
                throw ProbeFailure()
            case "bad_json":
                try comm.send(CommMessage(data: Array("[1]".utf8)))
            case "close":
                try comm.close(json: Reply(method: "bye", text: "closing"))
            case "keep":
                kept.withLock { $0.append(comm) }
            case "send_kept":
                for other in kept.withLock({ $0 }) {
                    try other.send(json: Reply(method: "kept", text: ""))
                }
            case "drop_kept":
                kept.withLock { $0.removeAll() }
            case "send_from_thread":
                let comm = self.comm
                let done = DispatchGroup()
                DispatchQueue.global().async(group: done) {
                    try? comm.send(json: Reply(method: "thread", text: "sent from another thread"))
                }
                done.wait()
            case "from_thread":
                let comm = self.comm
                let done = DispatchGroup()
                DispatchQueue.global().async(group: done) {
                    func attempt(_ body: () throws -> Void) -> String {
                        do { try body(); return "ok" } catch { return "\(error)" }
                    }
                    let open = attempt { try comm.session.open(Greeter.self, target: "probe.greeting") }
                    try? comm.send(json: Reply(method: "open", text: open))
                    let state = attempt { _ = try comm.session.state(as: Visits.self) }
                    try? comm.send(json: Reply(method: "state", text: state))
                }
                done.wait()
            case "open_failing":
                try comm.session.open(target: "probe.greeting") { (_: Comm) -> Greeter in
                    throw PluginError(.limitExceeded, "no greeter today")
                }
            case "post":
                let token = Token(comm.host, "post")
                try comm.post { (me: Probe) in
                    _ = token
                    try me.comm.send(json: Reply(method: "posted", text: me.comm.id))
                }
            case "post_wrong_type":
                try comm.post { (_: Second) in }
            case "timer_once":
                let token = Token(comm.host, "once")
                try comm.startTimer(after: .milliseconds(250)) { (me: Probe) in
                    _ = token
                    try me.comm.send(json: Reply(method: "tick", text: "once"))
                }
            case "timer_every":
                let token = Token(comm.host, "every")
                let timer = try comm.startTimer(after: .seconds(1), every: .seconds(2)) { (me: Probe) in
                    _ = token
                    try me.comm.send(json: Reply(method: "tick", text: "every"))
                }
                timers.withLock { $0[comm.id] = timer }
            case "cancel_timer":
                let canceled = timers.withLock { $0[comm.id] }?.cancel() ?? false
                try comm.send(json: Reply(method: "canceled", text: "\(canceled)"))
            case let other:
                throw PluginError(.invalidArgument, "probe has no method \(other)")
            }
        }

        func close(cause: CloseCause, message: CommMessage) {
            comm.host.log(.info, "closed: \(cause) \(message.dataText)")
        }
    }

    final class Second: CommHandler {
        static let handlerName = "second"
        init(comm: Comm, open message: CommMessage) throws {
            try comm.send(json: Reply(method: "opened", text: "second"))
        }
    }

    /// Opened toward the client by the library; echoes what it receives.
    final class Greeter: CommHandler {
        static let handlerName = "greeter"
        let comm: Comm
        init(comm: Comm, open message: CommMessage) throws {
            self.comm = comm
            try comm.send(json: Reply(method: "greeted", text: message.dataText))
        }
        func receive(_ message: CommMessage) throws {
            try comm.send(message)
        }
        func close(cause: CloseCause, message: CommMessage) {
            comm.host.log(.info, "greeter closed: \(cause)")
        }
    }

    /// Hands off a count; version 0.0.9 saved it as {"n": N}.
    final class Tally: SurvivesReload {
        static let handlerName = "tally"
        struct State: Codable {
            var count: Int
        }
        private struct OldState: Decodable {
            var n: Int
        }
        let comm: Comm
        var count: Int
        var state: State { State(count: count) }

        init(comm: Comm, open message: CommMessage) throws {
            self.comm = comm
            self.count = 0
        }

        init(comm: Comm, restoring state: State) throws {
            self.comm = comm
            self.count = state.count
        }

        static func decodeState(_ saved: [UInt8], fromVersion version: String) throws -> State {
            if version == "0.0.9" {
                return State(count: try decodeSaved(OldState.self, from: saved).n)
            }
            return try decodeSaved(State.self, from: saved)
        }

        func receive(_ message: CommMessage) throws {
            try comm.send(json: Reply(method: "count", text: "\(count)"))
        }
    }

    \#(numbered)

    @c(commhost_plugin_entry)
    public func entry() -> UnsafeRawPointer? {
    #if DUPLICATE_NAMES
        PluginExport.descriptor(name: "probe", version: "0.1.0", handlers: [Probe.self, Probe.self])
    #elseif MANY_HANDLERS
        PluginExport.descriptor(name: "many", version: "0.1.0",
                                handlers: [\#((0..<20).map { "Numbered\($0).self" }.joined(separator: ", "))])
    #else
        PluginExport.descriptor(name: "probe", version: "0.1.0", concurrent: true, library: ProbeLibrary.self,
                                handlers: [Probe.self, Second.self, Greeter.self, Tally.self])
    #endif
    }
    """#

    /// Built libraries by variant, each in its own folder; removed after the test class runs.
    private static let built = Mutex<[String: String]>([:])

    /// The path of the probe library compiled with `-D variant` (cached).
    static func build(variant: String?) throws -> String {
        if let path = built.withLock({ $0[variant ?? ""] }) { return path }
        let dir = NSTemporaryDirectory() + "commhost-kit-probe-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let sourcePath = dir + "/probe.swift"
        let output = dir + "/libProbePlugin.so"
        try source.write(toFile: sourcePath, atomically: true, encoding: .utf8)
        try TestSupport.compileSwiftPlugin(source: sourcePath, output: output, moduleName: "ProbePlugin", defines: variant.map { [$0] } ?? [])
        try? FileManager.default.removeItem(atPath: sourcePath)
        built.withLock { $0[variant ?? ""] = output }
        return output
    }

    /// Removes the compiled libraries (the loaded copies live in each test's folder).
    static func removeBuilt() {
        let paths = built.withLock { built in
            defer { built.removeAll() }
            return Array(built.values)
        }
        for path in paths {
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        }
    }
}

// MARK: - The library under test

/// A uniquely named copy of a plugin library (by default the built
/// libCounterPlugin.so), dlopened the way the host does (RTLD_NODELETE,
/// never dlclosed: Swift code is never unloaded), with the calls the host
/// makes through its descriptor. ``use(handler:)`` picks the handler used.
/// It keeps what the host would hold (the instances open, the sessions
/// started, the table) so that ``shutDown(_:)`` can end what a test left.
private final class LoadedLibrary {
    let descriptor: UnsafePointer<commhost_plugin>
    let entry: commhost_plugin_entry_fn
    private(set) var library: UnsafeMutableRawPointer?
    /// The test host's number for this library's table (0 before init).
    private(set) var number = 0
    private var handlerIndex = 0
    /// The table init was given, freed once deinit has returned.
    private var table: UnsafePointer<commhost_host>?

    /// An instance the host side holds until its close callback.
    private struct HeldInstance {
        var instance: UnsafeMutableRawPointer
        var comm: OpaquePointer
        var handler: UnsafePointer<commhost_handler>
    }
    /// The instances opened or restored here, or opened by the plugin through
    /// host open, and not closed yet, in the order they were made.
    private var instances: [HeldInstance] = []
    /// How many of the test host's open calls ``adoptPluginOpens()`` has looked at.
    private var opensSeen = 0
    /// The sessions started here and not ended yet, in start order.
    private var sessions: [OpaquePointer] = []
    private var handlerPointer: UnsafePointer<commhost_handler> { descriptor.pointee.handlers![handlerIndex]! }
    private var handler: commhost_handler { handlerPointer.pointee }

    /// Loads a copy of `path` made in `dir`; throws when dlopen fails or the
    /// entry returns NULL.
    convenience init(copyIn dir: String, of path: String = TestSupport.plugin("Counter")) throws {
        guard let loaded = try Self.load(copyIn: dir, of: path) else {
            throw KitTestFailure("the entry of \(path) returned NULL")
        }
        self.init(descriptor: loaded.descriptor, entry: loaded.entry)
    }

    private init(descriptor: UnsafePointer<commhost_plugin>, entry: @escaping commhost_plugin_entry_fn) {
        self.descriptor = descriptor
        self.entry = entry
    }

    /// Loads a copy of `path` made in `dir` and returns what its entry
    /// returned: nil when it returned NULL.
    static func load(copyIn dir: String, of path: String) throws
        -> (descriptor: UnsafePointer<commhost_plugin>, entry: commhost_plugin_entry_fn)? {
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let copy = "\(dir)/\(name)-\(UUID().uuidString).so"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        guard let handle = dlopen(copy, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            throw KitTestFailure("dlopen \(copy): \(String(cString: dlerror()))")
        }
        guard let symbol = dlsym(handle, COMMHOST_ENTRY_SYMBOL) else {
            throw KitTestFailure("\(copy) has no \(COMMHOST_ENTRY_SYMBOL)")
        }
        let entry = unsafeBitCast(symbol, to: commhost_plugin_entry_fn.self)
        return entry().map { ($0, entry) }
    }

    /// Picks the handler named `name` for the handler calls that follow.
    func use(handler name: String) {
        let plugin = descriptor.pointee
        handlerIndex = (0..<plugin.handler_count).first { String(cString: plugin.handlers![$0]!.pointee.name) == name }!
    }

    /// Runs the descriptor's init with a fresh test host table and `config`;
    /// throws unless it succeeds.
    func initialized(config: String = "") throws -> LoadedLibrary {
        var config = config
        let table = KitTestHost.makeTable()
        number = KitTestHost.libraryNumber(table)
        let status = config.withUTF8 { bytes in
            descriptor.pointee.`init`!(table,
                                      commhost_str(ptr: UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self), len: bytes.count),
                                      &library)
        }
        guard status == COMMHOST_OK, library != nil else {
            table.deallocate()
            throw KitTestFailure("init returned \(status)")
        }
        self.table = table
        return self
    }

    /// Runs deinit; the library drops what it holds (handed-off instances
    /// included), so the host holds nothing of it after, and its table is freed.
    func deinitialize() {
        descriptor.pointee.`deinit`!(library)
        library = nil
        instances = []
        sessions = []
        table?.deallocate()
        table = nil
    }

    /// Ends what the tests left of `libraries`, in the host's shutdown order:
    /// every instance still open is closed (its comm's tasks and timers get
    /// their last call first), every session still started ends, every task
    /// and timer left gets its last call, and each library still initialized
    /// is deinitialized, the last loaded first.
    static func shutDown(_ libraries: [LoadedLibrary]) {
        for loaded in libraries.reversed() where loaded.library != nil {
            loaded.adoptPluginOpens()
            while let held = loaded.instances.last {
                KitTestHost.markClosed(held.comm)
                loaded.close(held.instance, held.comm, cause: COMMHOST_CLOSE_SHUTDOWN)
            }
            while let session = loaded.sessions.last {
                loaded.endSession(session, cause: COMMHOST_SESSION_SHUTDOWN)
            }
        }
        KitTestHost.finishTasks()
        for loaded in libraries.reversed() where loaded.library != nil {
            loaded.deinitialize()
        }
    }

    /// Takes the instances the plugin opened through this library's table
    /// since the last look into ``instances``: the host holds them until close.
    private func adoptPluginOpens() {
        let opens = KitTestHost.opens()
        for open in opens.dropFirst(opensSeen) where open.library == number {
            guard let instance = open.instance else { continue }
            let plugin = descriptor.pointee
            let handler = (0..<plugin.handler_count).lazy.map { plugin.handlers![$0]! }
                .first { String(cString: $0.pointee.name) == open.handler }!
            instances.append(HeldInstance(instance: instance, comm: open.comm, handler: handler))
        }
        opensSeen = opens.count
    }

    /// Session start; the host ends the session later even when start fails.
    func startSession(_ session: OpaquePointer, cause: commhost_session_cause) -> commhost_status {
        var data: UnsafeMutableRawPointer?
        sessions.append(session)
        let status = descriptor.pointee.session_start!(library, session, cause, &data)
        KitTestHost.setSessionData(session, library: number, data)
        return status
    }

    func endSession(_ session: OpaquePointer, cause: commhost_session_cause) {
        sessions.removeAll { $0 == session }
        KitTestHost.endSession(session)
        descriptor.pointee.session_end!(library, session, KitTestHost.sessionData(session, library: number), cause)
    }

    func sessionWritable(_ session: OpaquePointer) {
        descriptor.pointee.session_writable!(library, session, KitTestHost.sessionData(session, library: number))
    }

    func openStatus(_ comm: OpaquePointer, data: String) -> (status: commhost_status, instance: UnsafeMutableRawPointer?) {
        var instance: UnsafeMutableRawPointer?
        let status = withMessage(data) { handler.open!(handlerPointer, library, comm, $0, &instance) }
        if status == COMMHOST_OK, let instance {
            instances.append(HeldInstance(instance: instance, comm: comm, handler: handlerPointer))
        }
        return (status, instance)
    }

    /// Opens and returns the instance; throws unless open succeeds with one.
    func open(_ comm: OpaquePointer, data: String) throws -> UnsafeMutableRawPointer {
        let (status, instance) = openStatus(comm, data: data)
        guard status == COMMHOST_OK, let instance else {
            throw KitTestFailure("open returned \(status): \(KitTestHost.errors())")
        }
        return instance
    }

    func message(_ instance: UnsafeMutableRawPointer, _ comm: OpaquePointer, data: String,
                 metadata: String = "", buffers: [[UInt8]] = []) -> commhost_status {
        withMessage(data, metadata: metadata, buffers: buffers) { handler.message!(handlerPointer, instance, comm, $0) }
    }

    /// Closes `instance`, through the handler it was opened with when this
    /// library made it (else the handler in use).
    func close(_ instance: UnsafeMutableRawPointer, _ comm: OpaquePointer, cause: commhost_close_cause, data: String = "{}") {
        adoptPluginOpens()
        let held = instances.lastIndex { $0.instance == instance }.map { instances.remove(at: $0) }
        let handler = held?.handler ?? handlerPointer
        withMessage(data) { handler.pointee.close!(handler, instance, comm, $0, cause) }
    }

    func snapshot(_ instance: UnsafeMutableRawPointer, _ comm: OpaquePointer) -> (status: commhost_status, state: [UInt8]) {
        let sink = ByteSink()
        var writer = commhost_writer(struct_size: MemoryLayout<commhost_writer>.stride, write: { writer, bytes, count in
            let sink = Unmanaged<ByteSink>.fromOpaque(writer!.pointee.host_data!).takeUnretainedValue()
            sink.bytes += UnsafeBufferPointer(start: bytes, count: count)
            return COMMHOST_OK
        }, host_data: Unmanaged.passUnretained(sink).toOpaque())
        let status = withExtendedLifetime(sink) { handler.snapshot!(handlerPointer, instance, comm, &writer) }
        return (status, sink.bytes)
    }

    func restore(_ comm: OpaquePointer, fromVersion: String, state: [UInt8]) -> (status: commhost_status, instance: UnsafeMutableRawPointer?) {
        var instance: UnsafeMutableRawPointer?
        var version = fromVersion
        let status = version.withUTF8 { text in
            state.withUnsafeBufferPointer {
                handler.restore!(handlerPointer, library, comm,
                                 commhost_str(ptr: UnsafeRawPointer(text.baseAddress)?.assumingMemoryBound(to: CChar.self), len: text.count),
                                 commhost_bytes(ptr: $0.baseAddress, len: $0.count), &instance)
            }
        }
        if status == COMMHOST_OK, let instance {
            instances.append(HeldInstance(instance: instance, comm: comm, handler: handlerPointer))
        }
        return (status, instance)
    }

    /// Lends a message as the host does; the strings and buffers are
    /// copied into storage that is freed when `body` returns.
    private func withMessage<R>(_ data: String, metadata: String = "", buffers: [[UInt8]] = [],
                                _ body: (UnsafePointer<commhost_message>) -> R) -> R {
        func lend(_ bytes: [UInt8]) -> UnsafeMutableBufferPointer<UInt8> {
            let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            _ = copy.initialize(from: bytes)
            return copy
        }
        let dataCopy = lend(Array(data.utf8)), metadataCopy = lend(Array(metadata.utf8))
        let bufferCopies = buffers.map(lend)
        defer { ([dataCopy, metadataCopy] + bufferCopies).forEach { $0.deallocate() } }
        let slices = zip(bufferCopies, buffers).map { commhost_bytes(ptr: $0.0.baseAddress, len: $0.1.count) }
        func str(_ copy: UnsafeMutableBufferPointer<UInt8>, _ count: Int) -> commhost_str {
            commhost_str(ptr: UnsafeRawPointer(copy.baseAddress)?.assumingMemoryBound(to: CChar.self), len: count)
        }
        return slices.withUnsafeBufferPointer { list in
            var message = commhost_message()
            message.struct_size = MemoryLayout<commhost_message>.stride
            message.data = str(dataCopy, data.utf8.count)
            message.metadata = str(metadataCopy, metadata.utf8.count)
            message.buffers = list.isEmpty ? nil : list.baseAddress
            message.buffer_count = list.count
            return body(&message)
        }
    }
}

/// Collects what a snapshot writes.
private final class ByteSink {
    var bytes: [UInt8] = []
}

private struct KitTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - The test host

/// A value behind a lock. (Not `Mutex`: the test host's state holds raw
/// handles, which `Mutex`'s `sending` closures will not let out.)
private final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only reached through withLock, under `lock`.
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// One comm_msg the plugin sent through the test host.
private struct SentMessage: Equatable {
    var comm: String
    var data: String
    var metadata = ""
    var buffers: [[UInt8]] = []
    /// The test host's number of the table it came through.
    var library = 0

    static func == (a: SentMessage, b: SentMessage) -> Bool {
        (a.comm, a.data, a.metadata, a.buffers) == (b.comm, b.data, b.metadata, b.buffers)
    }

    func json() throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
    }
}

/// One host open call: a comm the plugin opened toward the client.
private struct OpenCall {
    var library: Int
    var session: String
    var handler: String
    var target: String
    /// The id the plugin asked for ("" to let the host choose).
    var commID: String
    var data: String
    var comm: OpaquePointer
    var instance: UnsafeMutableRawPointer?
}

/// A timer the plugin started, as the test sees it.
private struct TimerInfo {
    var id: commhost_timer
    var delay: UInt64
    var period: UInt64
    /// The comm id, or "" for a session timer.
    var comm: String
}

/// A `commhost_host` per library whose functions record every call into one
/// global state: comm and session handles are tokens (never addresses)
/// validated on every call, with their reference counts; a call with an
/// unknown handle or one release too many is refused with COMMHOST_EHANDLE
/// and recorded (the test's tearDown fails on it). Posted tasks and timers
/// run only when the test calls ``drain()`` or ``fire(_:)``, on its thread.
private enum KitTestHost {
    typealias TaskFunction = @convention(c) (UnsafeMutableRawPointer?, commhost_status) -> Void

    struct CommRecord {
        var id: String
        var cID: UnsafeMutablePointer<CChar>
        var cTarget: UnsafeMutablePointer<CChar>
        var session: UInt
        var references = 0
        var closed = false
    }

    struct SessionRecord {
        var id: String
        var cID: UnsafeMutablePointer<CChar>
        var references = 0
        var ended = false
    }

    /// A task function's pending call.
    struct Call {
        var function: TaskFunction
        var data: UnsafeMutableRawPointer?
        var status: commhost_status
        var comm: UInt?
        var session: UInt?
    }

    struct TimerRecord {
        var function: TaskFunction
        var data: UnsafeMutableRawPointer?
        var delay: UInt64
        var period: UInt64
        var comm: UInt?
        var session: UInt?
    }

    struct State {
        var sends: [SentMessage] = []
        var closes: [SentMessage] = []
        var errors: [String] = []
        var logs: [(library: Int, line: String)] = []
        var handleErrors: [String] = []
        var comms: [UInt: CommRecord] = [:]
        var sessions: [UInt: SessionRecord] = [:]
        var sessionData: [String: UnsafeMutableRawPointer] = [:]
        var opens: [OpenCall] = []
        var queue: [Call] = []
        var timers: [commhost_timer: TimerRecord] = [:]
        var backpressure = false
        var defaultSession: UInt = 0
    }

    /// The host functions may be called from any thread.
    static let state = Locked(State())
    /// Handle tokens and library numbers, never reused within a test run.
    private static let counter = Atomic<UInt>(0x1000)

    private static func next() -> UInt { counter.wrappingAdd(1, ordering: .relaxed).newValue }

    /// Forgets everything, freeing the handles' id and target strings; with
    /// `keepingHandles`, only what was recorded (sends, closes, errors, logs)
    /// is forgotten.
    static func reset(keepingHandles: Bool = false) {
        state.withLock { state in
            if keepingHandles {
                state.sends = []; state.closes = []; state.errors = []; state.logs = []
            } else {
                for record in state.comms.values {
                    free(record.cID)
                    free(record.cTarget)
                }
                for record in state.sessions.values {
                    free(record.cID)
                }
                state = State()
            }
        }
    }

    private static func token(_ key: UInt) -> OpaquePointer { OpaquePointer(bitPattern: key)! }
    private static func key(_ handle: OpaquePointer?) -> UInt { UInt(bitPattern: UnsafeRawPointer(handle)) }

    static func makeSession(id: String) -> OpaquePointer {
        let key = next()
        state.withLock { $0.sessions[key] = SessionRecord(id: id, cID: strdup(id)) }
        return token(key)
    }

    /// The session comms are made in when the test names none.
    static var defaultSession: OpaquePointer {
        let existing = state.withLock { $0.defaultSession }
        if existing != 0 { return token(existing) }
        let session = makeSession(id: "default")
        state.withLock { $0.defaultSession = key(session) }
        return session
    }

    static func makeComm(id: String, target: String = "commhost.counter", in session: OpaquePointer? = nil) -> OpaquePointer {
        let sessionKey = key(session ?? defaultSession)
        let key = next()
        state.withLock { $0.comms[key] = CommRecord(id: id, cID: strdup(id), cTarget: strdup(target), session: sessionKey) }
        return token(key)
    }

    /// Closes `comm` as the host does: its pending tasks and timers get
    /// their last call (COMMHOST_ECLOSED) now, before its close callback.
    static func markClosed(_ comm: OpaquePointer) {
        let calls = state.withLock { state -> [Call] in
            state.comms[key(comm)]?.closed = true
            return takeLastCalls(&state) { call, _ in call == key(comm) }
        }
        run(calls)
    }

    /// Ends `session` as the host does: host open refuses it, and the
    /// pending tasks and timers of it and its comms get their last call.
    static func endSession(_ session: OpaquePointer) {
        let calls = state.withLock { state -> [Call] in
            state.sessions[key(session)]?.ended = true
            let comms = Set(state.comms.filter { $0.value.session == key(session) }.keys)
            return takeLastCalls(&state) { comm, owner in owner == key(session) || comm.map(comms.contains) == true }
        }
        run(calls)
    }

    /// Removes the queued calls and timers `matches` (comm, session) picks,
    /// as COMMHOST_ECLOSED last calls.
    private static func takeLastCalls(_ state: inout State, _ matches: (UInt?, UInt?) -> Bool) -> [Call] {
        var calls: [Call] = []
        state.queue.removeAll { call in
            guard matches(call.comm, call.session) else { return false }
            calls.append(Call(function: call.function, data: call.data, status: call.status == COMMHOST_OK ? COMMHOST_ECLOSED : call.status,
                              comm: call.comm, session: call.session))
            return true
        }
        for (id, timer) in state.timers where matches(timer.comm, timer.session) {
            state.timers[id] = nil
            calls.append(Call(function: timer.function, data: timer.data, status: COMMHOST_ECLOSED, comm: timer.comm, session: timer.session))
        }
        return calls
    }

    /// Gives every task and timer still pending its last call
    /// (COMMHOST_ECLOSED), as the host does before it deinitializes a library.
    static func finishTasks() {
        run(state.withLock { takeLastCalls(&$0) { _, _ in true } })
    }

    private static func run(_ calls: [Call]) {
        for call in calls { call.function(call.data, call.status) }
    }

    /// Runs the queued task calls in order (and any they queue) on this
    /// thread; returns how many ran.
    @discardableResult
    static func drain() -> Int {
        var count = 0
        while let call = state.withLock({ $0.queue.isEmpty ? nil : $0.queue.removeFirst() }) {
            call.function(call.data, call.status)
            count += 1
        }
        return count
    }

    static func pendingTasks() -> Int { state.withLock { $0.queue.count } }

    /// Runs one period of timer `id` (COMMHOST_OK); a one-shot timer has then had its last call.
    static func fire(_ id: commhost_timer) {
        guard let timer = state.withLock({ state -> TimerRecord? in
            let timer = state.timers[id]
            if timer?.period == 0 { state.timers[id] = nil }
            return timer
        }) else {
            return XCTFail("timer \(id) is not running")
        }
        timer.function(timer.data, COMMHOST_OK)
    }

    static func timers() -> [TimerInfo] {
        state.withLock { state in
            state.timers.sorted { $0.key < $1.key }.map { id, timer in
                TimerInfo(id: id, delay: timer.delay, period: timer.period, comm: timer.comm.flatMap { state.comms[$0]?.id } ?? "")
            }
        }
    }

    static func setBackpressure(_ on: Bool) { state.withLock { $0.backpressure = on } }

    static func references(_ handle: OpaquePointer) -> Int? {
        state.withLock { $0.comms[key(handle)]?.references ?? $0.sessions[key(handle)]?.references }
    }

    static func commID(_ comm: OpaquePointer) -> String { state.withLock { $0.comms[key(comm)]?.id ?? "" } }

    /// "comm ID: N" or "session ID: N" for each handle the plugin holds N > 0 references on.
    static func heldReferences() -> [String] {
        state.withLock { state in
            state.comms.values.filter { $0.references > 0 }.map { "comm \($0.id): \($0.references)" }
                + state.sessions.values.filter { $0.references > 0 }.map { "session \($0.id): \($0.references)" }
        }.sorted()
    }

    static func setSessionData(_ session: OpaquePointer, library: Int, _ data: UnsafeMutableRawPointer?) {
        state.withLock { $0.sessionData["\(library):\(key(session))"] = data }
    }

    static func sessionData(_ session: OpaquePointer, library: Int) -> UnsafeMutableRawPointer? {
        state.withLock { $0.sessionData["\(library):\(key(session))"] }
    }

    static func sends() -> [SentMessage] { state.withLock { $0.sends } }
    static func errors() -> [String] { state.withLock { $0.errors } }
    static func closes() -> [SentMessage] { state.withLock { $0.closes } }
    static func opens() -> [OpenCall] { state.withLock { $0.opens } }
    static func handleErrors() -> [String] { state.withLock { $0.handleErrors } }
    /// The log lines, "LEVEL text", without the probe's "released" lines.
    static func logs() -> [String] {
        state.withLock { $0.logs.map(\.line).filter { !$0.hasPrefix("\(COMMHOST_LOG_DEBUG) released ") } }
    }
    /// The library numbers of the log lines ``logs()`` returns.
    static func logLibraries() -> [Int] {
        state.withLock { $0.logs.filter { !$0.line.hasPrefix("\(COMMHOST_LOG_DEBUG) released ") }.map(\.library) }
    }
    /// The names of the probe's tokens freed so far (each logs once).
    static func releasedTokens() -> [String] {
        let prefix = "\(COMMHOST_LOG_DEBUG) released "
        return state.withLock { $0.logs.map(\.line).filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
    }

    /// The library number of a table made by ``makeTable(abiMajor:structSize:)``.
    static func libraryNumber(_ table: UnsafePointer<commhost_host>?) -> Int {
        Int(bitPattern: table?.pointee.host_data)
    }

    private static func text(_ str: commhost_str) -> String {
        guard let ptr = str.ptr, str.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: ptr, count: str.len), as: UTF8.self)
    }

    /// True when `text` is empty or a JSON object, the host's rule for data and metadata.
    private static func isObjectOrEmpty(_ text: String) -> Bool {
        text.isEmpty || (try? JSONSerialization.jsonObject(with: Data(text.utf8))) is [String: Any]
    }

    /// Refuses a call naming a handle the plugin does not hold, recording it.
    private static func refuse(_ state: inout State, _ what: String, _ handle: OpaquePointer?) -> commhost_status {
        state.handleErrors.append("\(what) with unknown handle \(key(handle))")
        return COMMHOST_EHANDLE
    }

    /// A fresh table, numbered in its host_data. The caller frees it once the
    /// library's deinit has returned (or its init refused the table): the
    /// plugin may use it until then.
    static func makeTable(abiMajor: UInt16 = UInt16(COMMHOST_ABI_MAJOR),
                          structSize: Int = MemoryLayout<commhost_host>.stride) -> UnsafePointer<commhost_host> {
        var api = commhost_host()
        api.struct_size = structSize
        api.abi_major = abiMajor
        api.abi_minor = UInt16(COMMHOST_ABI_MINOR)
        api.host_data = UnsafeMutableRawPointer(bitPattern: next())
        api.get_extension = { _, _ in nil }
        api.log = { host, level, message in
            KitTestHost.state.withLock { $0.logs.append((KitTestHost.libraryNumber(host), "\(level) \(KitTestHost.text(message))")) }
        }
        api.set_error = { _, message in KitTestHost.state.withLock { $0.errors.append(KitTestHost.text(message)) } }
        api.send = { host, comm, message in
            let data = message.map { KitTestHost.text($0.pointee.data) } ?? ""
            let metadata = message.map { KitTestHost.text($0.pointee.metadata) } ?? ""
            let buffers: [[UInt8]] = message.map { message in
                (0..<message.pointee.buffer_count).map { index -> [UInt8] in
                    let slice = message.pointee.buffers![index]
                    return Array(UnsafeBufferPointer(start: slice.ptr, count: slice.len))
                }
            } ?? []
            let valid = KitTestHost.isObjectOrEmpty(data) && KitTestHost.isObjectOrEmpty(metadata)
            return KitTestHost.state.withLock { state in
                guard let record = state.comms[KitTestHost.key(comm)] else { return KitTestHost.refuse(&state, "send", comm) }
                guard !record.closed else { return COMMHOST_ECLOSED }
                guard valid else { return COMMHOST_EJSON }
                guard !state.backpressure else { return COMMHOST_EAGAIN }
                state.sends.append(SentMessage(comm: record.id, data: data, metadata: metadata, buffers: buffers,
                                               library: KitTestHost.libraryNumber(host)))
                return COMMHOST_OK
            }
        }
        api.close = { _, comm, message in
            let data = message.map { KitTestHost.text($0.pointee.data) } ?? ""
            return KitTestHost.state.withLock { state in
                guard let record = state.comms[KitTestHost.key(comm)] else { return KitTestHost.refuse(&state, "close", comm) }
                guard !record.closed else { return COMMHOST_ECLOSED }
                state.comms[KitTestHost.key(comm)]?.closed = true
                state.closes.append(SentMessage(comm: record.id, data: data))
                return COMMHOST_OK
            }
        }
        api.open = { host, session, handler, target, commID, message, instance, outComm in
            let data = message.map { KitTestHost.text($0.pointee.data) } ?? ""
            let (handler, target, commID) = (KitTestHost.text(handler), KitTestHost.text(target), KitTestHost.text(commID))
            return KitTestHost.state.withLock { state in
                guard let record = state.sessions[KitTestHost.key(session)] else { return KitTestHost.refuse(&state, "open", session) }
                guard !record.ended else { return COMMHOST_ECLOSED }
                guard !state.backpressure else { return COMMHOST_EAGAIN }
                guard !target.isEmpty, !handler.isEmpty, let outComm else { return COMMHOST_EINVAL }
                let key = KitTestHost.next()
                let id = commID.isEmpty ? String(format: "%032x", key) : commID
                state.comms[key] = CommRecord(id: id, cID: strdup(id), cTarget: strdup(target), session: KitTestHost.key(session),
                                              references: 1)
                state.opens.append(OpenCall(library: KitTestHost.libraryNumber(host), session: record.id, handler: handler,
                                            target: target, commID: commID, data: data, comm: KitTestHost.token(key), instance: instance))
                outComm.pointee = KitTestHost.token(key)
                return COMMHOST_OK
            }
        }
        api.comm_id = { _, comm in
            KitTestHost.state.withLock { state in
                guard let id = state.comms[KitTestHost.key(comm)]?.cID else {
                    _ = KitTestHost.refuse(&state, "comm_id", comm)
                    return commhost_str(ptr: nil, len: 0)
                }
                return commhost_str(ptr: id, len: strlen(id))
            }
        }
        api.target_name = { _, comm in
            KitTestHost.state.withLock { state in
                guard let target = state.comms[KitTestHost.key(comm)]?.cTarget else {
                    _ = KitTestHost.refuse(&state, "target_name", comm)
                    return commhost_str(ptr: nil, len: 0)
                }
                return commhost_str(ptr: target, len: strlen(target))
            }
        }
        api.comm_session = { _, comm in
            KitTestHost.state.withLock { state in
                guard let record = state.comms[KitTestHost.key(comm)] else {
                    _ = KitTestHost.refuse(&state, "comm_session", comm)
                    return nil
                }
                return KitTestHost.token(record.session)
            }
        }
        api.retain_comm = { _, comm in
            KitTestHost.state.withLock { state in
                guard state.comms[KitTestHost.key(comm)] != nil else { return KitTestHost.refuse(&state, "retain_comm", comm) }
                state.comms[KitTestHost.key(comm)]!.references += 1
                return COMMHOST_OK
            }
        }
        api.release_comm = { _, comm in
            KitTestHost.state.withLock { state in
                guard let record = state.comms[KitTestHost.key(comm)] else { return KitTestHost.refuse(&state, "release_comm", comm) }
                guard record.references > 0 else {
                    state.handleErrors.append("release_comm of comm \"\(record.id)\" with no reference held")
                    return COMMHOST_EHANDLE
                }
                state.comms[KitTestHost.key(comm)]!.references -= 1
                return COMMHOST_OK
            }
        }
        api.session_id = { _, session in
            KitTestHost.state.withLock { state in
                guard let id = state.sessions[KitTestHost.key(session)]?.cID else {
                    _ = KitTestHost.refuse(&state, "session_id", session)
                    return commhost_str(ptr: nil, len: 0)
                }
                return commhost_str(ptr: id, len: strlen(id))
            }
        }
        api.session_data = { host, session in
            KitTestHost.state.withLock { $0.sessionData["\(KitTestHost.libraryNumber(host)):\(KitTestHost.key(session))"] }
        }
        api.retain_session = { _, session in
            KitTestHost.state.withLock { state in
                guard state.sessions[KitTestHost.key(session)] != nil else { return KitTestHost.refuse(&state, "retain_session", session) }
                state.sessions[KitTestHost.key(session)]!.references += 1
                return COMMHOST_OK
            }
        }
        api.release_session = { _, session in
            KitTestHost.state.withLock { state in
                guard let record = state.sessions[KitTestHost.key(session)] else {
                    return KitTestHost.refuse(&state, "release_session", session)
                }
                guard record.references > 0 else {
                    state.handleErrors.append("release_session of session \"\(record.id)\" with no reference held")
                    return COMMHOST_EHANDLE
                }
                state.sessions[KitTestHost.key(session)]!.references -= 1
                return COMMHOST_OK
            }
        }
        api.post = { _, session, comm, function, data in
            KitTestHost.state.withLock { state in
                guard let function, session != nil || comm != nil else { return COMMHOST_EINVAL }
                if let status = KitTestHost.checkContext(&state, "post", session, comm) { return status }
                state.queue.append(Call(function: function, data: data, status: COMMHOST_OK,
                                        comm: comm.map { KitTestHost.key($0) }, session: session.map { KitTestHost.key($0) }))
                return COMMHOST_OK
            }
        }
        api.timer_start = { _, session, comm, delay, period, function, data, outTimer in
            KitTestHost.state.withLock { state in
                guard let function, session != nil || comm != nil else { return COMMHOST_EINVAL }
                if let status = KitTestHost.checkContext(&state, "timer_start", session, comm) { return status }
                let id = commhost_timer(KitTestHost.next())
                state.timers[id] = TimerRecord(function: function, data: data, delay: delay, period: period,
                                               comm: comm.map { KitTestHost.key($0) }, session: session.map { KitTestHost.key($0) })
                outTimer?.pointee = id
                return COMMHOST_OK
            }
        }
        api.timer_cancel = { _, timer in
            KitTestHost.state.withLock { state in
                guard let record = state.timers.removeValue(forKey: timer) else { return COMMHOST_EHANDLE }
                state.queue.append(Call(function: record.function, data: record.data, status: COMMHOST_ECANCELED,
                                        comm: record.comm, session: record.session))
                return COMMHOST_OK
            }
        }
        let table = UnsafeMutablePointer<commhost_host>.allocate(capacity: 1)
        table.initialize(to: api)
        return UnsafePointer(table)
    }

    /// The refusal for a post or timer on `comm` (when given) or else
    /// `session`, or nil when it may be scheduled.
    private static func checkContext(_ state: inout State, _ what: String, _ session: OpaquePointer?,
                                     _ comm: OpaquePointer?) -> commhost_status? {
        if let comm {
            guard let record = state.comms[key(comm)] else { return refuse(&state, what, comm) }
            return record.closed ? COMMHOST_ECLOSED : nil
        }
        guard let record = state.sessions[key(session)] else { return refuse(&state, what, session) }
        return record.ended ? COMMHOST_ECLOSED : nil
    }
}
