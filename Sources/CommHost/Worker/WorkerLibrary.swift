import CommPluginAPI

/// The plugin library as the worker holds it: dlopened (`RTLD_NOW |
/// RTLD_LOCAL`, never unloaded: the process ends with it), its descriptor
/// read and checked as the host's loader checks it, its callbacks kept as C
/// function pointers. Not initialized: init runs when the host asks
/// (`initialize`). Calls are made by `WorkerServer`, which the host
/// serializes; nothing changes after loading except `libraryData`, set by init.
final class WorkerLibrary: @unchecked Sendable {
    // @unchecked: the handler structs and function pointers are the plugin's
    // immutable descriptor; `libraryData` is behind a lock.

    typealias InitFn = @convention(c) (UnsafePointer<commhost_host>?, commhost_str,
                                       UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status
    typealias DeinitFn = @convention(c) (UnsafeMutableRawPointer?) -> Void
    typealias SessionStartFn = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, commhost_session_cause,
                                               UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status
    typealias SessionEndFn = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutableRawPointer?,
                                             commhost_session_cause) -> Void
    typealias SessionWritableFn = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutableRawPointer?) -> Void

    /// One handler's callbacks, with its own struct (the context of every call).
    struct Handler {
        typealias OpenFn = @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                           UnsafePointer<commhost_message>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?)
            -> commhost_status
        typealias MessageFn = @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                              UnsafePointer<commhost_message>?) -> commhost_status
        typealias CloseFn = @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                            UnsafePointer<commhost_message>?, commhost_close_cause) -> Void
        typealias SnapshotFn = @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                               UnsafePointer<commhost_writer>?) -> commhost_status
        typealias RestoreFn = @convention(c) (UnsafePointer<commhost_handler>?, UnsafeMutableRawPointer?, OpaquePointer?,
                                              commhost_str, commhost_bytes, UnsafeMutablePointer<UnsafeMutableRawPointer?>?)
            -> commhost_status

        let name: String
        let raw: UnsafePointer<commhost_handler>
        let open: OpenFn
        let message: MessageFn?
        let close: CloseFn?
        let snapshot: SnapshotFn?
        let restore: RestoreFn?

        /// Which optional callbacks exist, as `WorkerHandler.callbacks`.
        var callbacks: UInt32 {
            (message != nil ? WorkerHandler.hasMessage : 0) | (close != nil ? WorkerHandler.hasClose : 0)
                | (snapshot != nil ? WorkerHandler.hasSnapshot : 0) | (restore != nil ? WorkerHandler.hasRestore : 0)
        }
    }

    /// Why the library cannot be served: one line, sent as `refusal`.
    struct Refusal: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    let name: String
    let version: String
    let abiMajor: UInt16, abiMinor: UInt16
    let flags: UInt32
    let handlers: [Handler]
    let initFn: InitFn?
    let deinitFn: DeinitFn?
    let sessionStartFn: SessionStartFn?
    let sessionEndFn: SessionEndFn?
    let sessionWritableFn: SessionWritableFn?
    /// What init returned, passed to open, restore, the session callbacks and
    /// deinit. Locked although the host orders init before every other call:
    /// that order reaches the worker through the host's socket, which a
    /// thread sanitizer cannot see.
    let libraryData = Locked<UnsafeMutableRawPointer?>(nil)

    /// The descriptor as the host's proxy needs it (`hello`).
    var descriptor: WorkerDescriptor {
        let callbacks = (initFn != nil ? WorkerDescriptor.hasInit : 0) | (deinitFn != nil ? WorkerDescriptor.hasDeinit : 0)
            | (sessionStartFn != nil ? WorkerDescriptor.hasSessionStart : 0)
            | (sessionEndFn != nil ? WorkerDescriptor.hasSessionEnd : 0)
            | (sessionWritableFn != nil ? WorkerDescriptor.hasSessionWritable : 0)
        return WorkerDescriptor(name: name, version: version, abiMajor: abiMajor, abiMinor: abiMinor, flags: flags,
                                libraryCallbacks: callbacks,
                                handlers: handlers.map { WorkerHandler(name: $0.name, callbacks: $0.callbacks) })
    }

    /// Checks the file at `path` (an ELF shared object for this machine, not
    /// truncated), dlopens it and reads its descriptor with the host loader's
    /// checks, in the loader's order (docs/ARCHITECTURE.md, "Loading"). The
    /// reasons read as the loader's, without the path (the host names its
    /// own file).
    static func load(path: String) throws(Refusal) -> WorkerLibrary {
        let bytes: [UInt8]
        switch FileSystem.readFile(path) {
        case .success(let read): bytes = read
        case .failure(let failure): throw Refusal(reason: "cannot read \(path): \(failure)")
        }
        if case .failure(let refusal) = bytes.withUnsafeBytes({ raw in Result { () throws(ELFImage.Refusal) in try ELFImage(raw) } }) {
            throw Refusal(reason: refusal.reason)
        }
        let dl: DynamicLibrary
        do {
            dl = try DynamicLibrary.open(path, neverUnload: true)
        } catch {
            throw Refusal(reason: "dlopen refused it: \(error.message)")
        }
        guard let entry = dl.symbol(COMMHOST_ENTRY_SYMBOL) else {
            throw Refusal(reason: "no entry symbol \(COMMHOST_ENTRY_SYMBOL); is it exported (COMMHOST_DECLARE_ENTRY) and built as a commhost plugin?")
        }
        let entryFn = unsafeBitCast(entry, to: commhost_plugin_entry_fn.self)
        guard let descriptor = entryFn() else {
            throw Refusal(reason: "\(COMMHOST_ENTRY_SYMBOL) returned NULL (the plugin refused to run)")
        }
        return try WorkerLibrary(descriptor: descriptor)
    }

    private init(descriptor: UnsafePointer<commhost_plugin>) throws(Refusal) {
        let minimum = PluginLibrary.minimumDescriptorSize
        let size = ABIStruct.declaredSize(descriptor)
        let versionsEnd = MemoryLayout<commhost_plugin>.offset(of: \.abi_minor)! + 2
        guard size >= versionsEnd else {
            throw Refusal(reason: "descriptor struct_size \(size) is too small to hold its ABI version (need \(minimum))")
        }
        let plugin = ABIStruct.plugin(descriptor)
        let major = plugin.abi_major, minor = plugin.abi_minor
        guard major == COMMHOST_ABI_MAJOR else {
            throw Refusal(reason: "ABI major version \(major) is not supported (this host speaks \(COMMHOST_ABI_MAJOR).\(COMMHOST_ABI_MINOR)); rebuild it against this host's comm_plugin.h")
        }
        guard minor <= COMMHOST_ABI_MINOR else {
            throw Refusal(reason: "ABI version \(major).\(minor) is newer than this host's \(COMMHOST_ABI_MAJOR).\(COMMHOST_ABI_MINOR); upgrade commhost or rebuild the plugin against an older header")
        }
        guard size >= minimum else {
            throw Refusal(reason: "descriptor struct_size \(size) is too small for ABI \(major).\(minor) (need at least \(minimum))")
        }
        let count = plugin.handler_count
        guard count > 0, let table = plugin.handlers else {
            throw Refusal(reason: "descriptor lists no handlers")
        }
        var handlers: [Handler] = []
        var seen = Set<String>()
        for i in 0..<count {
            guard let raw = table[i] else { throw Refusal(reason: "handler \(i) is NULL") }
            let handlerSize = ABIStruct.declaredSize(raw)
            guard handlerSize >= CommHost.Handler.minimumSize else {
                throw Refusal(reason: "handler \(i) struct_size \(handlerSize) is smaller than ABI 1.0's commhost_handler (\(CommHost.Handler.minimumSize) bytes)")
            }
            let fields = ABIStruct.handler(raw)
            guard let cName = fields.name, cName.pointee != 0 else { throw Refusal(reason: "handler \(i) has no name") }
            guard let name = String(validatingCString: cName) else { throw Refusal(reason: "handler \(i) name is not valid UTF-8") }
            guard let open = fields.open else { throw Refusal(reason: "handler \(i) \"\(name)\" has no open callback") }
            guard seen.insert(name).inserted else {
                throw Refusal(reason: "handler \(i) repeats the name \"\(name)\"; handler names must be unique")
            }
            handlers.append(Handler(name: name, raw: raw, open: open, message: fields.message, close: fields.close,
                                    snapshot: fields.snapshot, restore: fields.restore))
        }
        self.handlers = handlers
        abiMajor = major
        abiMinor = minor
        flags = plugin.flags
        name = plugin.name.flatMap { String(validatingCString: $0) } ?? ""
        version = plugin.version.flatMap { String(validatingCString: $0) } ?? ""
        initFn = plugin.`init`
        deinitFn = plugin.deinit
        sessionStartFn = plugin.session_start
        sessionEndFn = plugin.session_end
        sessionWritableFn = plugin.session_writable
    }
}
