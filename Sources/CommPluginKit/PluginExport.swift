import CommPluginAPI
import Glibc
import Synchronization

/// Turns handler types into the C descriptor the host loads.
///
/// Export a library from its entry function:
///
/// ```swift
/// @c(commhost_plugin_entry)
/// public func commhostPluginEntry() -> UnsafeRawPointer? {
///     PluginExport.descriptor(name: "counter", version: "1.0.0", handlers: [Counter.self])
/// }
/// ```
/// (`@_cdecl("commhost_plugin_entry")` works too.)
public enum PluginExport {
    /// The most handler types one library can export.
    public static let maxHandlers = handlerSlotCount

    /// The library's `commhost_plugin` descriptor, built on the first call
    /// and kept for the life of the process; later calls return the same
    /// pointer whatever their arguments.
    ///
    /// The descriptor has ABI version `COMMHOST_ABI_MAJOR.COMMHOST_ABI_MINOR`,
    /// one `commhost_handler` per type in `handlers`, in order, named by its
    /// ``CommHandler/handlerName``, with snapshot and restore only for types
    /// adopting ``HandsOffState``. It sets `COMMHOST_PLUGIN_CONCURRENT` only
    /// when `concurrent` is true: pass true only if every handler type's
    /// instances may run on different threads at once (each instance's own
    /// calls stay serialized either way).
    ///
    /// Returns nil, and writes why to standard error, when `name` or
    /// `version` is empty, `handlers` is empty or has more than
    /// ``maxHandlers`` types, or two handlers share a name; the host then
    /// refuses the library.
    public static func descriptor(name: String, version: String, concurrent: Bool = false,
                                  handlers: [any CommHandler.Type]) -> UnsafeRawPointer? {
        registration.withLock { registration in
            if let registration {
                return registration.descriptor
            }
            let slots = handlers.map(HandlerSlot.init)
            if let problem = problem(name: name, version: version, slots: slots) {
                let line = "commhost plugin \"\(name)\": \(problem); the library cannot be loaded\n"
                _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
                return nil
            }
            let descriptor = build(name: name, version: version, concurrent: concurrent, slots: slots)
            registration = Registration(descriptor: descriptor, slots: slots)
            return descriptor
        }
    }

    /// The handler types of the descriptor, or nil before it was built.
    static func registeredSlots() -> [HandlerSlot]? {
        registration.withLock { $0?.slots }
    }

    private static func problem(name: String, version: String, slots: [HandlerSlot]) -> String? {
        if name.isEmpty || name.contains("\0") { return "the library name must be non-empty text without NUL" }
        if version.isEmpty || version.contains("\0") { return "the version must be non-empty text without NUL" }
        if slots.isEmpty { return "it exports no handlers; pass at least one CommHandler type" }
        if slots.count > maxHandlers {
            return "it exports \(slots.count) handlers, more than the \(maxHandlers) one library can; split it"
        }
        var seen = Set<String>()
        for slot in slots {
            if slot.name.isEmpty || slot.name.contains("\0") {
                return "handler type \(slot.type) has an empty handlerName (or one with NUL)"
            }
            if !seen.insert(slot.name).inserted {
                return "two handler types are named \"\(slot.name)\"; handler names must be unique"
            }
        }
        return nil
    }

    /// Allocates the C descriptor; it is never freed (a Swift library is never unloaded).
    private static func build(name: String, version: String, concurrent: Bool,
                              slots: [HandlerSlot]) -> UnsafeRawPointer {
        let list = UnsafeMutablePointer<UnsafePointer<commhost_handler>?>.allocate(capacity: slots.count)
        for (index, slot) in slots.enumerated() {
            var handler = commhost_handler()
            handler.struct_size = MemoryLayout<commhost_handler>.stride
            handler.name = UnsafePointer(strdup(slot.name))
            handler.open = openCallback(slot: index)
            handler.message = { receiveMessage($0, $1, $2) }
            handler.close = { closeInstance($0, $1, $2, $3) }
            if slot.handsOffType != nil {
                handler.snapshot = { snapshotInstance($0, $1, $2) }
                handler.restore = restoreCallback(slot: index)
            }
            let pointer = UnsafeMutablePointer<commhost_handler>.allocate(capacity: 1)
            pointer.initialize(to: handler)
            (list + index).initialize(to: UnsafePointer(pointer))
        }
        var plugin = commhost_plugin()
        plugin.struct_size = MemoryLayout<commhost_plugin>.stride
        plugin.abi_major = UInt16(COMMHOST_ABI_MAJOR)
        plugin.abi_minor = UInt16(COMMHOST_ABI_MINOR)
        plugin.flags = concurrent ? COMMHOST_PLUGIN_CONCURRENT : 0
        plugin.name = UnsafePointer(strdup(name))
        plugin.version = UnsafePointer(strdup(version))
        plugin.`init` = { initLibrary($0, $1, $2) }
        plugin.`deinit` = { deinitLibrary($0) }
        plugin.handlers = UnsafePointer(list)
        plugin.handler_count = slots.count
        let pointer = UnsafeMutablePointer<commhost_plugin>.allocate(capacity: 1)
        pointer.initialize(to: plugin)
        return UnsafeRawPointer(pointer)
    }
}

/// The built descriptor and its handler types, once the entry function ran.
private struct Registration {
    let descriptor: UnsafeRawPointer
    let slots: [HandlerSlot]
}

/// Set once by the first ``PluginExport/descriptor(name:version:concurrent:handlers:)``.
private let registration = Mutex<Registration?>(nil)
