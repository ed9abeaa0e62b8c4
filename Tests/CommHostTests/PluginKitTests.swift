import CommPluginAPI
import Foundation
import Glibc
import Synchronization
import XCTest

/// CommPluginKit and the Counter example, through the C ABI only: each test
/// dlopens a uniquely named copy of the built libCounterPlugin.so (as the host
/// does, never unloaded) and drives its descriptor from a small test host
/// whose function table records everything the plugin calls.
final class PluginKitTests: XCTestCase {
    private var dir: String!

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
        KitTestHost.reset()
    }

    override class func tearDown() {
        ProbePlugin.removeBuilt()
        super.tearDown()
    }

    private func loadCounter() throws -> LoadedLibrary {
        try LoadedLibrary(copyIn: dir)
    }

    private func loadProbe() throws -> LoadedLibrary {
        try LoadedLibrary(copyIn: dir, of: ProbePlugin.build(variant: nil))
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
        XCTAssertEqual(plugin.handler_count, 1)
        let handler = try XCTUnwrap(plugin.handlers?[0]).pointee
        XCTAssertEqual(handler.struct_size, MemoryLayout<commhost_handler>.stride)
        XCTAssertEqual(String(cString: handler.name), "counter")
        XCTAssertNotNil(handler.open)
        XCTAssertNotNil(handler.message)
        XCTAssertNotNil(handler.close)
        XCTAssertNotNil(handler.snapshot, "Counter adopts HandsOffState")
        XCTAssertNotNil(handler.restore, "Counter adopts HandsOffState")
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
        KitTestHost.reset(keepingComms: true)
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"request_state"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.sends().map(\.data), [#"{"method":"update","state":{"value":3}}"#])
    }

    // MARK: Errors at the boundary

    func testOpenWithNonIntegerValueFailsWithStatusAndErrorText() throws {
        let library = try loadCounter().initialized()
        let comm = KitTestHost.makeComm(id: "c1")
        let (status, instance) = library.openStatus(comm, data: #"{"value": "five"}"#)
        XCTAssertLessThan(status, 0)
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

    func testInitRefusesHostOfAnotherABIMajorWithErrorText() throws {
        let library = try loadCounter()
        var library2: UnsafeMutableRawPointer?
        let table = KitTestHost.makeTable(abiMajor: 2)
        let status = library.descriptor.pointee.`init`!(table, commhost_str(ptr: nil, len: 0), &library2)
        XCTAssertEqual(status, COMMHOST_EUNSUPPORTED)
        XCTAssertNil(library2)
        XCTAssertTrue(try XCTUnwrap(KitTestHost.errors().last).contains("ABI 1"))
    }

    // MARK: Lifecycle

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
        let (restoreStatus, restored) = new.restore(comm, state: state)
        XCTAssertEqual(restoreStatus, COMMHOST_OK)
        let newInstance = try XCTUnwrap(restored)
        let (againStatus, again) = new.snapshot(newInstance, comm)
        XCTAssertEqual(againStatus, COMMHOST_OK)
        XCTAssertEqual(again, state, "the round trip gives the same bytes")

        KitTestHost.reset(keepingComms: true)
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
        let newInstance = try XCTUnwrap(new.restore(comm, state: state).instance)
        XCTAssertEqual(KitTestHost.references(comm), 2)
        old.deinitialize()
        XCTAssertEqual(KitTestHost.references(comm), 1, "the handed-off instance was dropped at deinit")
        new.close(newInstance, comm, cause: COMMHOST_CLOSE_CLIENT)
        XCTAssertEqual(KitTestHost.references(comm), 0)
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
            let (status, instance) = library.restore(comm, state: bytes)
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
        XCTAssertEqual(KitTestHost.references(a), 0)
        XCTAssertEqual(KitTestHost.references(b), 0)
        first.deinitialize()
        second.deinitialize()
    }

    // MARK: The kit with several handler types (the probe plugin, compiled here)

    func testLibraryWithTwoHandlerTypesOpensEachAsItsOwnType() throws {
        let library = try loadProbe().initialized()
        let plugin = library.descriptor.pointee
        XCTAssertEqual(plugin.handler_count, 2)
        XCTAssertEqual((0..<2).map { String(cString: plugin.handlers![$0]!.pointee.name) }, ["probe", "second"])
        library.handlerIndex = 1
        let comm = KitTestHost.makeComm(id: "s1")
        _ = try library.open(comm, data: "{}")
        XCTAssertEqual(KitTestHost.sends(), [.init(comm: "s1", data: #"{"method":"opened","text":"second"}"#)])
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
            (COMMHOST_CLOSE_REMOVED, "removed"), (COMMHOST_CLOSE_RELOAD, "reload"),
            (commhost_close_cause(rawValue: 99), "other(99)"),
        ]
        for (cause, _) in causes {
            let comm = KitTestHost.makeComm(id: "p1")
            let instance = try library.open(comm, data: "{}")
            library.close(instance, comm, cause: cause, data: #"{"bye":1}"#)
        }
        let info = String(COMMHOST_LOG_INFO.rawValue)
        XCTAssertEqual(KitTestHost.logs(), causes.map { "\(info) closed: \($0.1) {\"bye\":1}" })
    }

    func testHandlerLogReachesHostLogWithLevel() throws {
        let library = try loadProbe().initialized()
        let comm = KitTestHost.makeComm(id: "p1")
        let instance = try library.open(comm, data: "{}")
        XCTAssertEqual(library.message(instance, comm, data: #"{"method":"log"}"#), COMMHOST_OK)
        XCTAssertEqual(KitTestHost.logs(), ["\(COMMHOST_LOG_WARNING.rawValue) probe says hi"])
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
}

/// A Swift plugin built here with swiftc against the CommPluginKit the
/// package built, to reach the kit's features that Counter does not use:
/// two handler types, metadata and buffers, errors of each kind, close
/// causes, the log, the configuration and a Comm kept past its close.
private enum ProbePlugin {
    static let source = #"""
    import CommPluginKit
    import Dispatch
    import Synchronization

    /// Comms kept past their close by the "keep" method.
    let kept = Mutex<[Comm]>([])

    struct Reply: Encodable {
        var method: String
        var text: String
    }

    struct ProbeFailure: Error, CustomStringConvertible {
        var description: String { "probe failed in its own way" }
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

    @c(commhost_plugin_entry)
    public func entry() -> UnsafeRawPointer? {
    #if DUPLICATE_NAMES
        PluginExport.descriptor(name: "probe", version: "0.1.0", handlers: [Probe.self, Probe.self])
    #else
        PluginExport.descriptor(name: "probe", version: "0.1.0", concurrent: true, handlers: [Probe.self, Second.self])
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
/// makes through its descriptor. `handlerIndex` picks the handler used.
private final class LoadedLibrary {
    let descriptor: UnsafePointer<commhost_plugin>
    let entry: commhost_plugin_entry_fn
    private(set) var library: UnsafeMutableRawPointer?
    var handlerIndex = 0
    private var handler: commhost_handler { descriptor.pointee.handlers![handlerIndex]!.pointee }

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

    /// Runs the descriptor's init with the test host table and `config`;
    /// throws unless it succeeds.
    func initialized(config: String = "") throws -> LoadedLibrary {
        var config = config
        let status = config.withUTF8 { bytes in
            descriptor.pointee.`init`!(KitTestHost.makeTable(),
                                      commhost_str(ptr: UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self), len: bytes.count),
                                      &library)
        }
        guard status == COMMHOST_OK, library != nil else { throw KitTestFailure("init returned \(status)") }
        return self
    }

    func deinitialize() {
        descriptor.pointee.`deinit`!(library)
        library = nil
    }

    func openStatus(_ comm: OpaquePointer, data: String) -> (status: commhost_status, instance: UnsafeMutableRawPointer?) {
        var instance: UnsafeMutableRawPointer?
        let status = withMessage(data) { handler.open!(library, comm, $0, &instance) }
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
        withMessage(data, metadata: metadata, buffers: buffers) { handler.message!(instance, comm, $0) }
    }

    func close(_ instance: UnsafeMutableRawPointer, _ comm: OpaquePointer, cause: commhost_close_cause, data: String = "{}") {
        withMessage(data) { handler.close!(instance, comm, $0, cause) }
    }

    func snapshot(_ instance: UnsafeMutableRawPointer, _ comm: OpaquePointer) -> (status: commhost_status, state: [UInt8]) {
        let sink = ByteSink()
        var writer = commhost_writer(context: Unmanaged.passUnretained(sink).toOpaque()) { context, bytes, count in
            let sink = Unmanaged<ByteSink>.fromOpaque(context!).takeUnretainedValue()
            sink.bytes += UnsafeBufferPointer(start: bytes, count: count)
            return COMMHOST_OK
        }
        let status = withExtendedLifetime(sink) { handler.snapshot!(instance, comm, &writer) }
        return (status, sink.bytes)
    }

    func restore(_ comm: OpaquePointer, state: [UInt8]) -> (status: commhost_status, instance: UnsafeMutableRawPointer?) {
        var instance: UnsafeMutableRawPointer?
        let status = state.withUnsafeBufferPointer {
            handler.restore!(library, comm, commhost_bytes(ptr: $0.baseAddress, len: $0.count), &instance)
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

/// One comm_msg the plugin sent through the test host.
private struct SentMessage: Equatable {
    var comm: String
    var data: String
    var metadata = ""
    var buffers: [[UInt8]] = []

    func json() throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
    }
}

/// A `commhost_host_api` whose functions record every call into one global
/// state, and comm handles it allocates (never freed: the plugin may hold them).
private enum KitTestHost {
    struct CommRecord {
        var id: String
        var cID: UnsafeMutablePointer<CChar>
        var cTarget: UnsafeMutablePointer<CChar>
        var references = 0
        var closed = false
    }

    struct State {
        var sends: [SentMessage] = []
        var closes: [SentMessage] = []
        var errors: [String] = []
        var logs: [String] = []
        var comms: [UInt: CommRecord] = [:]
    }

    /// Guarded by its Mutex; the host functions may be called from any thread.
    static let state = Mutex(State())

    static func reset(keepingComms: Bool = false) {
        state.withLock { $0 = State(comms: keepingComms ? $0.comms : [:]) }
    }

    static func makeComm(id: String, target: String = "commhost.counter") -> OpaquePointer {
        let handle = OpaquePointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))
        state.withLock { $0.comms[key(handle)] = CommRecord(id: id, cID: strdup(id), cTarget: strdup(target)) }
        return handle
    }

    static func markClosed(_ comm: OpaquePointer) {
        state.withLock { $0.comms[key(comm)]?.closed = true }
    }

    static func references(_ comm: OpaquePointer) -> Int? {
        state.withLock { $0.comms[key(comm)]?.references }
    }

    static func sends() -> [SentMessage] { state.withLock { $0.sends } }
    static func errors() -> [String] { state.withLock { $0.errors } }
    static func closes() -> [SentMessage] { state.withLock { $0.closes } }
    static func logs() -> [String] { state.withLock { $0.logs } }

    private static func key(_ comm: OpaquePointer?) -> UInt {
        UInt(bitPattern: UnsafeRawPointer(comm))
    }

    private static func text(_ str: commhost_str) -> String {
        guard let ptr = str.ptr, str.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: ptr, count: str.len), as: UTF8.self)
    }

    /// True when `text` is empty or a JSON object, the host's rule for data and metadata.
    private static func isObjectOrEmpty(_ text: String) -> Bool {
        text.isEmpty || (try? JSONSerialization.jsonObject(with: Data(text.utf8))) is [String: Any]
    }

    /// A fresh table (never freed: the plugin keeps it until deinit).
    static func makeTable(abiMajor: UInt16 = UInt16(COMMHOST_ABI_MAJOR)) -> UnsafePointer<commhost_host_api> {
        var api = commhost_host_api()
        api.struct_size = MemoryLayout<commhost_host_api>.stride
        api.abi_major = abiMajor
        api.abi_minor = UInt16(COMMHOST_ABI_MINOR)
        api.get_extension = { _ in nil }
        api.log = { level, message in
            KitTestHost.state.withLock { $0.logs.append("\(level.rawValue) \(KitTestHost.text(message))") }
        }
        api.set_error = { message in KitTestHost.state.withLock { $0.errors.append(KitTestHost.text(message)) } }
        api.send = { comm, message in
            let data = message.map { KitTestHost.text($0.pointee.data) } ?? ""
            let metadata = message.map { KitTestHost.text($0.pointee.metadata) } ?? ""
            guard KitTestHost.isObjectOrEmpty(data), KitTestHost.isObjectOrEmpty(metadata) else { return COMMHOST_EJSON }
            let buffers: [[UInt8]] = message.map { message in
                (0..<message.pointee.buffer_count).map { index -> [UInt8] in
                    let slice = message.pointee.buffers![index]
                    return Array(UnsafeBufferPointer(start: slice.ptr, count: slice.len))
                }
            } ?? []
            return KitTestHost.state.withLock { state in
                guard let record = state.comms[KitTestHost.key(comm)] else { return COMMHOST_EINVAL }
                guard !record.closed else { return COMMHOST_ECLOSED }
                state.sends.append(SentMessage(comm: record.id, data: data, metadata: metadata, buffers: buffers))
                return COMMHOST_OK
            }
        }
        api.close = { comm, message in
            let data = message.map { KitTestHost.text($0.pointee.data) } ?? ""
            return KitTestHost.state.withLock { state in
                guard let record = state.comms[KitTestHost.key(comm)] else { return COMMHOST_EINVAL }
                guard !record.closed else { return COMMHOST_ECLOSED }
                state.comms[KitTestHost.key(comm)]?.closed = true
                state.closes.append(SentMessage(comm: record.id, data: data))
                return COMMHOST_OK
            }
        }
        api.open = { _, _, _, _, _, _ in COMMHOST_EUNSUPPORTED }
        api.comm_id = { comm in
            KitTestHost.state.withLock { state in
                guard let id = state.comms[KitTestHost.key(comm)]?.cID else { return commhost_str(ptr: nil, len: 0) }
                return commhost_str(ptr: id, len: strlen(id))
            }
        }
        api.target_name = { comm in
            KitTestHost.state.withLock { state in
                guard let target = state.comms[KitTestHost.key(comm)]?.cTarget else { return commhost_str(ptr: nil, len: 0) }
                return commhost_str(ptr: target, len: strlen(target))
            }
        }
        api.retain_comm = { comm in KitTestHost.state.withLock { $0.comms[KitTestHost.key(comm)]?.references += 1 } }
        api.release_comm = { comm in KitTestHost.state.withLock { $0.comms[KitTestHost.key(comm)]?.references -= 1 } }
        let table = UnsafeMutablePointer<commhost_host_api>.allocate(capacity: 1)
        table.initialize(to: api)
        return UnsafePointer(table)
    }
}
