import CommPluginAPI

/// One named handler of a loaded library: calls through its C table with the
/// library's serialization and the per-thread error text, passing the
/// plugin's own handler struct as the context of every call. Callbacks the
/// plugin left NULL (or that its struct_size does not reach) are skipped.
public final class Handler: @unchecked Sendable {
    // @unchecked: every stored property is immutable; the library serializes calls.

    /// The handler's name, unique within its library.
    public let name: String
    /// The library this handler belongs to.
    public let library: PluginLibrary
    /// The plugin's handler struct, passed back as each callback's context.
    private let raw: UnsafePointer<commhost_handler>
    private let openFn: @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                        UnsafePointer<commhost_message>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status
    private let messageFn: (@convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                            UnsafePointer<commhost_message>?) -> commhost_status)?
    private let closeFn: (@convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                          UnsafePointer<commhost_message>?, commhost_close_cause) -> Void)?
    private let snapshotFn: (@convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                             UnsafePointer<commhost_writer>?) -> commhost_status)?
    private let restoreFn: (@convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?, commhost_str,
                                            commhost_bytes, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status)?

    /// The ABI 1.0 size of `commhost_handler`: the least the host accepts.
    static let minimumSize = MemoryLayout<commhost_handler>.offset(of: \.restore)! + MemoryLayout<UnsafeRawPointer>.size

    /// Reads the handler table at `raw`: at least its ABI 1.0 size, fields
    /// past its struct_size absent. Throws a reason when it is too small or
    /// has no name or no open callback.
    init(raw: UnsafePointer<commhost_handler>, library: PluginLibrary) throws(HandlerRefusal) {
        let size = ABIStruct.declaredSize(raw)
        guard size >= Self.minimumSize else {
            throw HandlerRefusal(reason: "struct_size \(size) is smaller than ABI 1.0's commhost_handler (\(Self.minimumSize) bytes)")
        }
        let table = ABIStruct.handler(raw)
        guard let cName = table.name, cName.pointee != 0 else {
            throw HandlerRefusal(reason: "has no name")
        }
        guard let name = String(validatingCString: cName) else {
            throw HandlerRefusal(reason: "name is not valid UTF-8")
        }
        guard let open = table.open else {
            throw HandlerRefusal(reason: "\"\(name)\" has no open callback", name: name)
        }
        self.name = name
        self.library = library
        self.raw = raw
        openFn = open
        messageFn = table.message
        closeFn = table.close
        snapshotFn = table.snapshot
        restoreFn = table.restore
    }

    /// Whether this handler implements both halves of the reload hand-off.
    public var supportsHandOff: Bool { snapshotFn != nil && restoreFn != nil }

    /// Calls open; returns the instance pointer the plugin gave.
    func open(comm: CommHandle, message: UnsafePointer<commhost_message>) throws(PluginCallError) -> UnsafeMutableRawPointer? {
        var instance: UnsafeMutableRawPointer? = nil
        let state = library.libraryData
        let handle = comm.opaque
        try library.call(on: Unmanaged.passUnretained(comm), handle: handle) {
            openFn(raw, state, handle, message, &instance)
        }
        return instance
    }

    /// Calls message, when the plugin has one.
    @inline(__always)
    func message(instance: UnsafeMutableRawPointer?, comm: CommHandle, message: UnsafePointer<commhost_message>) throws(PluginCallError) {
        try self.message(instance: instance, comm: Unmanaged.passUnretained(comm), handle: comm.opaque, message: message)
    }

    /// Calls message, when the plugin has one, for a comm the caller holds
    /// (`handle` is its `opaque`). Everything the call needs is read before
    /// it and the closure captures plain values only: capturing the handler
    /// or the comm cost a retain and a release of each on every message.
    @inline(__always)
    func message(instance: UnsafeMutableRawPointer?, comm: Unmanaged<CommHandle>, handle: OpaquePointer,
                 message: UnsafePointer<commhost_message>) throws(PluginCallError) {
        guard let messageFn else { return }
        let raw = raw
        try library.call(on: comm, handle: handle) { messageFn(raw, instance, handle, message) }
    }

    /// Calls close, when the plugin has one.
    func close(instance: UnsafeMutableRawPointer?, comm: CommHandle, message: UnsafePointer<commhost_message>, cause: CloseCause) {
        guard let closeFn else { return }
        try? library.call {
            closeFn(raw, instance, comm.opaque, message, cause.rawValue)
            return COMMHOST_OK
        }
    }

    /// Calls snapshot: the instance's state as bytes. Requires `supportsHandOff`.
    func snapshot(instance: UnsafeMutableRawPointer?, comm: CommHandle) throws(PluginCallError) -> [UInt8] {
        guard let snapshotFn else { throw PluginCallError(status: COMMHOST_EUNSUPPORTED, text: "handler \"\(name)\" has no snapshot") }
        var failure: PluginCallError?
        let (_, bytes) = SnapshotWriter.collect { writer in
            do throws(PluginCallError) {
                try library.call { snapshotFn(raw, instance, comm.opaque, writer) }
                return COMMHOST_OK
            } catch {
                failure = error
                return error.status
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Calls restore: a new instance for `comm` from `state`, written by
    /// library version `fromVersion`. Requires `supportsHandOff`.
    func restore(comm: CommHandle, fromVersion: String, state: [UInt8]) throws(PluginCallError) -> UnsafeMutableRawPointer? {
        guard let restoreFn else { throw PluginCallError(status: COMMHOST_EUNSUPPORTED, text: "handler \"\(name)\" has no restore") }
        var instance: UnsafeMutableRawPointer? = nil
        let libraryState = library.libraryData
        var version = Array(fromVersion.utf8)
        try state.withUnsafeBufferPointer { raw in
            version.withUnsafeMutableBytes { versionBytes in
                Result { () throws(PluginCallError) in
                    let from = commhost_str(ptr: versionBytes.baseAddress?.assumingMemoryBound(to: CChar.self), len: versionBytes.count)
                    try library.call { restoreFn(self.raw, libraryState, comm.opaque, from, commhost_bytes(ptr: raw.baseAddress, len: raw.count), &instance) }
                }
            }
        }.get()
        return instance
    }
}

/// Why a handler table is unusable.
struct HandlerRefusal: Error {
    var reason: String
    var name: String? = nil
}
