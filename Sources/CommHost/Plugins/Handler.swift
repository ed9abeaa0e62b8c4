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
