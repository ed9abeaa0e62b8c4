import CommPluginAPI

/// One named handler of a loaded library: calls through its C table with the
/// library's serialization and the per-thread error text. Callbacks the
/// plugin left NULL (or that its struct_size does not reach) are skipped.
public final class Handler: @unchecked Sendable {
    // @unchecked: every stored property is immutable; the library serializes calls.

    /// The handler's name, unique within its library.
    public let name: String
    /// The library this handler belongs to.
    public let library: PluginLibrary
    private let openFn: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<commhost_message>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status
    private let messageFn: (@convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<commhost_message>?) -> commhost_status)?
    private let closeFn: (@convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<commhost_message>?, commhost_close_cause) -> Void)?
    private let snapshotFn: (@convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<commhost_writer>?) -> commhost_status)?
    private let restoreFn: (@convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, commhost_bytes, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status)?

    /// Reads the handler table at `raw`, honouring its struct_size. Returns
    /// nil (with a reason) when it has no name or no open callback.
    init(raw: UnsafePointer<commhost_handler>, library: PluginLibrary) throws(HandlerRefusal) {
        let size = raw.pointee.struct_size
        func has<T>(_ field: KeyPath<commhost_handler, T>) -> Bool {
            guard let offset = MemoryLayout<commhost_handler>.offset(of: field) else { return false }
            return size >= offset + MemoryLayout<T>.size
        }
        guard size >= MemoryLayout<commhost_handler>.offset(of: \.open)! + MemoryLayout<UnsafeRawPointer>.size else {
            throw HandlerRefusal(reason: "struct_size \(size) is too small (at least \(MemoryLayout<commhost_handler>.offset(of: \.open)! + 8) needed)")
        }
        guard let cName = raw.pointee.name, cName.pointee != 0 else {
            throw HandlerRefusal(reason: "has no name")
        }
        guard let name = String(validatingCString: cName) else {
            throw HandlerRefusal(reason: "name is not valid UTF-8")
        }
        guard let open = raw.pointee.open else {
            throw HandlerRefusal(reason: "\"\(name)\" has no open callback", name: name)
        }
        self.name = name
        self.library = library
        openFn = open
        messageFn = has(\.message) ? raw.pointee.message : nil
        closeFn = has(\.close) ? raw.pointee.close : nil
        snapshotFn = has(\.snapshot) ? raw.pointee.snapshot : nil
        restoreFn = has(\.restore) ? raw.pointee.restore : nil
    }

    /// Whether this handler implements both halves of the reload hand-off.
    public var supportsHandOff: Bool { snapshotFn != nil && restoreFn != nil }

    /// Calls open; returns the instance pointer the plugin gave.
    func open(comm: CommHandle, message: UnsafePointer<commhost_message>) throws(PluginCallError) -> UnsafeMutableRawPointer? {
        var instance: UnsafeMutableRawPointer? = nil
        let state = library.state
        try library.call { openFn(state, comm.opaque, message, &instance) }
        return instance
    }

    /// Calls message, when the plugin has one.
    func message(instance: UnsafeMutableRawPointer?, comm: CommHandle, message: UnsafePointer<commhost_message>) throws(PluginCallError) {
        guard let messageFn else { return }
        try library.call { messageFn(instance, comm.opaque, message) }
    }

    /// Calls close, when the plugin has one.
    func close(instance: UnsafeMutableRawPointer?, comm: CommHandle, message: UnsafePointer<commhost_message>, cause: commhost_close_cause) {
        guard let closeFn else { return }
        try? library.call {
            closeFn(instance, comm.opaque, message, cause)
            return COMMHOST_OK
        }
    }
}

/// Why a handler table is unusable.
struct HandlerRefusal: Error {
    var reason: String
    var name: String? = nil
}

extension Handler {
    /// Calls snapshot: the instance's state as bytes. Requires `supportsHandOff`.
    func snapshot(instance: UnsafeMutableRawPointer?, comm: CommHandle) throws(PluginCallError) -> [UInt8] {
        guard let snapshotFn else { throw PluginCallError(status: COMMHOST_EUNSUPPORTED, text: "handler \"\(name)\" has no snapshot") }
        let sink = SnapshotSink()
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        var writer = commhost_writer(context: context.toOpaque()) { context, ptr, len in
            guard let context else { return COMMHOST_EINVAL }
            guard len == 0 || ptr != nil else { return COMMHOST_EINVAL }
            let sink = Unmanaged<SnapshotSink>.fromOpaque(context).takeUnretainedValue()
            if len > 0 { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: ptr, count: len)) }
            return COMMHOST_OK
        }
        try library.call { snapshotFn(instance, comm.opaque, &writer) }
        return sink.bytes
    }

    /// Calls restore: a new instance for `comm` from `state`. Requires `supportsHandOff`.
    func restore(comm: CommHandle, state: [UInt8]) throws(PluginCallError) -> UnsafeMutableRawPointer? {
        guard let restoreFn else { throw PluginCallError(status: COMMHOST_EUNSUPPORTED, text: "handler \"\(name)\" has no restore") }
        var instance: UnsafeMutableRawPointer? = nil
        let libraryState = library.state
        try state.withUnsafeBufferPointer { raw in
            Result { () throws(PluginCallError) in
                try library.call { restoreFn(libraryState, comm.opaque, commhost_bytes(ptr: raw.baseAddress, len: raw.count), &instance) }
            }
        }.get()
        return instance
    }
}

/// Collects what a plugin's snapshot writes.
private final class SnapshotSink {
    var bytes: [UInt8] = []
}
