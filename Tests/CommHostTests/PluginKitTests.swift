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

    private func loadCounter() throws -> CounterLibrary {
        try CounterLibrary(copyIn: dir)
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
}

// MARK: - The library under test

/// A uniquely named copy of the built libCounterPlugin.so, dlopened the way
/// the host does (RTLD_NODELETE, never dlclosed: Swift code is never unloaded).
private final class CounterLibrary {
    let descriptor: UnsafePointer<commhost_plugin>
    let entry: commhost_plugin_entry_fn
    private(set) var library: UnsafeMutableRawPointer?
    private var handler: commhost_handler { descriptor.pointee.handlers![0]!.pointee }

    init(copyIn dir: String) throws {
        let copy = "\(dir)/libCounterPlugin-\(UUID().uuidString).so"
        try FileManager.default.copyItem(atPath: TestSupport.plugin("Counter"), toPath: copy)
        guard let handle = dlopen(copy, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            throw KitTestFailure("dlopen \(copy): \(String(cString: dlerror()))")
        }
        guard let symbol = dlsym(handle, COMMHOST_ENTRY_SYMBOL) else {
            throw KitTestFailure("\(copy) has no \(COMMHOST_ENTRY_SYMBOL)")
        }
        entry = unsafeBitCast(symbol, to: commhost_plugin_entry_fn.self)
        guard let descriptor = entry() else { throw KitTestFailure("the entry returned NULL") }
        self.descriptor = descriptor
    }

    /// Runs the descriptor's init with the test host table; throws unless it succeeds.
    func initialized() throws -> CounterLibrary {
        let status = descriptor.pointee.`init`!(KitTestHost.makeTable(), commhost_str(ptr: nil, len: 0), &library)
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

    func message(_ instance: UnsafeMutableRawPointer, _ comm: OpaquePointer, data: String) -> commhost_status {
        withMessage(data) { handler.message!(instance, comm, $0) }
    }

    func close(_ instance: UnsafeMutableRawPointer, _ comm: OpaquePointer, cause: commhost_close_cause) {
        withMessage("{}") { handler.close!(instance, comm, $0, cause) }
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

    private func withMessage<R>(_ data: String, _ body: (UnsafePointer<commhost_message>) -> R) -> R {
        var data = data
        return data.withUTF8 { bytes in
            var message = commhost_message()
            message.struct_size = MemoryLayout<commhost_message>.stride
            message.data = commhost_str(ptr: UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self), len: bytes.count)
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
        var closes: [String] = []
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
        api.log = { _, message in KitTestHost.state.withLock { $0.logs.append(KitTestHost.text(message)) } }
        api.set_error = { message in KitTestHost.state.withLock { $0.errors.append(KitTestHost.text(message)) } }
        api.send = { comm, message in
            let data = message.map { KitTestHost.text($0.pointee.data) } ?? ""
            let metadata = message.map { KitTestHost.text($0.pointee.metadata) } ?? ""
            guard KitTestHost.isObjectOrEmpty(data), KitTestHost.isObjectOrEmpty(metadata) else { return COMMHOST_EJSON }
            return KitTestHost.state.withLock { state in
                guard let record = state.comms[KitTestHost.key(comm)] else { return COMMHOST_EINVAL }
                guard !record.closed else { return COMMHOST_ECLOSED }
                state.sends.append(SentMessage(comm: record.id, data: data))
                return COMMHOST_OK
            }
        }
        api.close = { comm, _ in
            KitTestHost.state.withLock { state in
                guard let record = state.comms[KitTestHost.key(comm)] else { return COMMHOST_EINVAL }
                guard !record.closed else { return COMMHOST_ECLOSED }
                state.comms[KitTestHost.key(comm)]?.closed = true
                state.closes.append(record.id)
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
