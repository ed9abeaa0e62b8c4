import CommPluginAPI
import Glibc
import Synchronization

/// Turns a library type and handler types into the C descriptor the host loads.
///
/// Export a library from its entry function:
///
/// ```swift
/// @c(commhost_plugin_entry)
/// public func commhostPluginEntry() -> UnsafeRawPointer? {
///     PluginExport.descriptor(name: "dashboard", version: "1.0.0", library: Dashboard.self,
///                             handlers: [Clock.self, Chart.self])
/// }
/// ```
/// (`@_cdecl("commhost_plugin_entry")` works too.)
public enum PluginExport {
    /// The library's `commhost_plugin` descriptor, built on the first call
    /// and kept for the life of the process; later calls return the same
    /// pointer whatever their arguments.
    ///
    /// The descriptor has ABI version `COMMHOST_ABI_MAJOR.COMMHOST_ABI_MINOR`,
    /// the library's init, deinit and session callbacks (served by `library`,
    /// or by a library that keeps nothing when it is nil), and one
    /// `commhost_handler` per type in `handlers`, in order (as many as you
    /// like), named by its ``CommHandler/handlerName``, with snapshot and
    /// restore only for types adopting ``SurvivesReload``. It sets
    /// `COMMHOST_PLUGIN_CONCURRENT` only when `concurrent` is true: pass true
    /// only if the library type and every handler type may serve different
    /// sessions on different threads at once (each session's own calls stay
    /// serialized either way).
    ///
    /// Returns nil, and writes why to standard error, when `name` or
    /// `version` is empty, `handlers` is empty, or two handlers share a name;
    /// the host then refuses the library.
    public static func descriptor(name: String, version: String, concurrent: Bool = false,
                                  library: (any CommLibrary.Type)? = nil,
                                  handlers: [any CommHandler.Type]) -> UnsafeRawPointer? {
        registered.withLock { registered in
            if let registered {
                return registered.descriptor
            }
            let slots = handlers.map(HandlerSlot.init)
            if let problem = problem(name: name, version: version, slots: slots) {
                let line = "commhost plugin \"\(name)\": \(problem); the library cannot be loaded\n"
                _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
                return nil
            }
            let descriptor = build(name: name, version: version, concurrent: concurrent, slots: slots)
            registered = Registration(descriptor: descriptor, version: version,
                                      library: library ?? DefaultLibrary.self, slots: slots)
            return descriptor
        }
    }

    /// What the descriptor was built from, or nil before it was built.
    static func registration() -> Registration? {
        registered.withLock { $0 }
    }

    private static func problem(name: String, version: String, slots: [HandlerSlot]) -> String? {
        if name.isEmpty || name.contains("\0") { return "the library name must be non-empty text without NUL" }
        if version.isEmpty || version.contains("\0") { return "the version must be non-empty text without NUL" }
        if slots.isEmpty { return "it exports no handlers; pass at least one CommHandler type" }
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

    /// Allocates the C descriptor; it is never freed (a Swift library is
    /// never unloaded), and neither are the slots its handlers point at.
    private static func build(name: String, version: String, concurrent: Bool,
                              slots: [HandlerSlot]) -> UnsafeRawPointer {
        let list = UnsafeMutablePointer<UnsafePointer<commhost_handler>?>.allocate(capacity: slots.count)
        for (index, slot) in slots.enumerated() {
            var handler = commhost_handler()
            handler.struct_size = MemoryLayout<commhost_handler>.size
            handler.name = UnsafePointer(strdup(slot.name))
            handler.handler_data = Unmanaged.passRetained(slot).toOpaque()
            handler.open = { openInstance($0, $1, $2, $3, $4) }
            handler.message = { receiveMessage($0, $1, $2, $3) }
            handler.close = { closeInstance($0, $1, $2, $3, $4) }
            if slot.survivesReloadType != nil {
                handler.snapshot = { snapshotInstance($0, $1, $2, $3) }
                handler.restore = { restoreInstance($0, $1, $2, $3, $4, $5) }
            }
            (list + index).initialize(to: permanentCopy(of: &handler, size: MemoryLayout<commhost_handler>.size,
                                                        alignment: MemoryLayout<commhost_handler>.alignment))
        }
        var plugin = commhost_plugin()
        plugin.struct_size = MemoryLayout<commhost_plugin>.size
        plugin.abi_major = UInt16(COMMHOST_ABI_MAJOR)
        plugin.abi_minor = UInt16(COMMHOST_ABI_MINOR)
        plugin.flags = concurrent ? COMMHOST_PLUGIN_CONCURRENT : 0
        plugin.name = UnsafePointer(strdup(name))
        plugin.version = UnsafePointer(strdup(version))
        plugin.`init` = { initLibrary($0, $1, $2) }
        plugin.`deinit` = { deinitLibrary($0) }
        plugin.handlers = UnsafePointer(list)
        plugin.handler_count = slots.count
        plugin.session_start = { startSession($0, $1, $2, $3) }
        plugin.session_end = { endSession($0, $1, $2, $3) }
        plugin.session_writable = { sessionWritable($0, $1, $2) }
        return UnsafeRawPointer(permanentCopy(of: &plugin, size: MemoryLayout<commhost_plugin>.size,
                                              alignment: MemoryLayout<commhost_plugin>.alignment))
    }

    /// A heap copy of an ABI struct, never freed. `size` and `alignment` are
    /// the caller's concrete `MemoryLayout`, never `T`'s runtime metadata:
    /// Swift shares the metadata of an imported C struct between every image
    /// in the process, so a host built against another version of the header
    /// may have registered a different layout under the same name (a generic
    /// `initialize(to:)` would copy the host's size, not this library's).
    private static func permanentCopy<T>(of value: inout T, size: Int, alignment: Int) -> UnsafePointer<T> {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: alignment)
        withUnsafePointer(to: &value) { storage.copyMemory(from: $0, byteCount: size) }
        return UnsafePointer(storage.assumingMemoryBound(to: T.self))
    }
}

/// The built descriptor and what it was built from, once the entry function ran.
struct Registration: @unchecked Sendable {
    // @unchecked: `descriptor` points at memory written once by build()
    // before the Registration is published and never changed or freed; the
    // other fields are immutable Sendable values.
    let descriptor: UnsafeRawPointer
    let version: String
    let library: any CommLibrary.Type
    let slots: [HandlerSlot]
}

/// Set once by the first ``PluginExport/descriptor(name:version:concurrent:library:handlers:)``.
private let registered = Mutex<Registration?>(nil)
