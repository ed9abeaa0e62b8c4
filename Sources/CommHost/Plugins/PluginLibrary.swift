import CommPluginAPI
import Glibc
import Synchronization

/// A loaded plugin library: a staged copy, dlopened, its descriptor checked
/// and its init run. Calls into it are serialized unless its descriptor sets
/// `COMMHOST_PLUGIN_CONCURRENT`. `retire()` waits for calls in flight, runs
/// deinit and unloads it when that is safe (never for Swift code); once
/// retired, no call reaches it.
public final class PluginLibrary: @unchecked Sendable {
    // @unchecked: stored properties are immutable after load except `libraryData`
    // (written once by init, before any other call) and `handlers` (filled
    // in the initializer); `retired`, `accepting` and `inFlight` are atomics
    // and `gate` serializes calls.

    /// The library file as given (the build output, not the staged copy).
    public let path: String
    /// The staged copy that was dlopened.
    public let stagedPath: String
    /// SHA-256 of the staged copy, lowercase hex.
    public let sha256: String
    /// The descriptor's library name.
    public let name: String
    /// The descriptor's version text.
    public let version: String
    /// The ABI version the library was built against.
    public let abiMajor: UInt16, abiMinor: UInt16
    /// The library holds Swift code and so is never unloaded.
    public let containsSwift: Bool
    /// The config JSON text its init was given.
    public let config: [UInt8]
    /// Callbacks may run concurrently (`COMMHOST_PLUGIN_CONCURRENT`).
    public let concurrent: Bool
    /// The handlers, in descriptor order.
    public private(set) var handlers: [Handler] = []
    /// What init returned (the header's `out_library`), passed to open,
    /// restore, the session callbacks and deinit.
    private(set) var libraryData: UnsafeMutableRawPointer?

    /// The dlopened copy; nil for a library served by a worker process.
    private let dl: DynamicLibrary?
    /// The worker process serving this library (`"isolation": "process"`), or nil in-process.
    let worker: (any LibraryWorker)?
    private let staging: StagingArea
    private let deinitFn: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?
    private let sessionStartFn: (@convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, commhost_session_cause,
                                                 UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status)?
    private let sessionEndFn: (@convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutableRawPointer?, commhost_session_cause) -> Void)?
    private let sessionWritableFn: (@convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafeMutableRawPointer?) -> Void)?
    /// Serializes calls of a library that is not `concurrent`. A pthread
    /// mutex (`ConditionLock`), so ThreadSanitizer sees the ordering it gives.
    private let gate = ConditionLock()
    private let inFlight = Atomic<Int>(0)
    private let retired = Atomic<Bool>(false)
    private let slowCallback = Atomic<UInt64>(5_000_000_000)
    private let accepting = Atomic<Bool>(true)
    /// This library's `commhost_host` table (made at load, never freed).
    private(set) var hostTable: UnsafePointer<commhost_host>!
    private let logger: Logger

    /// The handler names, in descriptor order.
    public var handlerNames: [String] { handlers.map(\.name) }

    /// The handler called `name`, if the library exports one.
    public func handler(named name: String) -> Handler? {
        handlers.first { $0.name == name }
    }

    /// Why `name` cannot be bound here: one line naming the library and the
    /// handlers it does export.
    public func noHandlerReason(_ name: String) -> String {
        "library \(path) exports no handler \(JSONText.string(name)) (it exports: \(handlerNames.map(JSONText.string).joined(separator: ", ")))"
    }

    /// Stages a copy of `path`, checks it, dlopens it, checks its descriptor
    /// and handlers and runs its init with `config` (JSON text). When
    /// `expectedSHA256` is given, the staged copy — the bytes that are
    /// dlopened — must have that hash. Throws a one-line reason naming `path`.
    /// With `isolation`, the staged copy is loaded by a `commhost worker`
    /// child process instead, and this library forwards every call to it.
    public static func load(path: String, staging: StagingArea, config: [UInt8] = Array("null".utf8),
                            expectedSHA256: String? = nil, logger: Logger? = nil,
                            isolation: (any LibraryWorkerLaunch)? = nil, maxFrameBytes: Int = 64 << 20) throws(LoadError) -> PluginLibrary {
        let bytes = try readFile(path)
        let image: ELFImage
        let digest: String
        let stagedPath: String
        switch bytes.withUnsafeBytes({ raw in Result { () throws(ELFImage.Refusal) in try ELFImage(raw) } }) {
        case .success(let checked): image = checked
        case .failure(let refusal): throw LoadError(.notSharedObject, path: path, reason: refusal.reason)
        }
        digest = bytes.withUnsafeBytes { SHA256.hex(SHA256.hash($0)) }
        if let expected = expectedSHA256, expected.lowercased() != digest {
            throw LoadError(.hashMismatch, path: path, reason: "SHA-256 is \(digest), the manifest expects \(expected.lowercased()); refusing to load it")
        }
        stagedPath = try bytes.withUnsafeBytes { raw in
            Result { () throws(LoadError) in try staging.stage(raw, originalPath: path) }
        }.get()

        if let isolation {
            return try loadInWorker(path: path, stagedPath: stagedPath, digest: digest, config: config, image: image, staging: staging,
                                    logger: logger, options: isolation, maxFrameBytes: maxFrameBytes)
        }
        let dl: DynamicLibrary
        do {
            dl = try DynamicLibrary.open(stagedPath, neverUnload: image.containsSwift)
        } catch {
            staging.remove(stagedPath)
            throw LoadError(.dlopenFailed, path: path, reason: "dlopen refused it: \(error.message)")
        }
        func refuse(_ kind: LoadError.Kind, _ reason: String) -> LoadError {
            if !image.containsSwift { dl.close() }
            staging.remove(stagedPath)
            return LoadError(kind, path: path, reason: reason)
        }
        guard let entry = dl.symbol(COMMHOST_ENTRY_SYMBOL) else {
            throw refuse(.noEntry, "no entry symbol \(COMMHOST_ENTRY_SYMBOL); is it exported (COMMHOST_DECLARE_ENTRY) and built as a commhost plugin?")
        }
        let entryFn = unsafeBitCast(entry, to: commhost_plugin_entry_fn.self)
        guard let descriptor = entryFn() else {
            throw refuse(.badDescriptor, "\(COMMHOST_ENTRY_SYMBOL) returned NULL (the plugin refused to run)")
        }
        let library: PluginLibrary
        do {
            library = try PluginLibrary(path: path, stagedPath: stagedPath, sha256: digest, config: config, containsSwift: image.containsSwift,
                                        descriptor: descriptor, dl: dl, worker: nil, staging: staging,
                                        logger: logger ?? HostAPI.logger.withLock { $0 })
        } catch {
            throw refuse(error.kind, error.reason)
        }
        do {
            try library.initialize(config: config)
        } catch {
            throw refuse(.initFailed, "init failed: \(error)")
        }
        return library
    }

    /// The same load, with the staged copy served by a new worker process.
    private static func loadInWorker(path: String, stagedPath: String, digest: String, config: [UInt8], image: ELFImage,
                                     staging: StagingArea, logger: Logger?, options: any LibraryWorkerLaunch,
                                     maxFrameBytes: Int) throws(LoadError) -> PluginLibrary {
        let worker: any LibraryWorker
        do {
            worker = try options.start(stagedPath: stagedPath, maxFrameBytes: 2 * maxFrameBytes + (1 << 20))
        } catch {
            staging.remove(stagedPath)
            throw LoadError(.dlopenFailed, path: path, reason: "worker: \(error.reason)")
        }
        func refuse(_ kind: LoadError.Kind, _ reason: String) -> LoadError {
            worker.kill(because: "its library was refused")
            staging.remove(stagedPath)
            return LoadError(kind, path: path, reason: reason)
        }
        let library: PluginLibrary
        do {
            library = try PluginLibrary(path: path, stagedPath: stagedPath, sha256: digest, config: config, containsSwift: image.containsSwift,
                                        descriptor: worker.standInDescriptor, dl: nil, worker: worker, staging: staging,
                                        logger: logger ?? HostAPI.logger.withLock { $0 })
        } catch {
            throw refuse(error.kind, error.reason)
        }
        do {
            try worker.startServing { [unowned library] reason in library.workerDied(reason) }
        } catch {
            throw refuse(.dlopenFailed, "worker: \(error.reason)")
        }
        do {
            try library.initialize(config: config)
        } catch {
            throw refuse(.initFailed, "init failed: \(error)")
        }
        return library
    }

    private init(path: String, stagedPath: String, sha256: String, config: [UInt8], containsSwift: Bool,
                 descriptor: UnsafePointer<commhost_plugin>, dl: DynamicLibrary?, worker: (any LibraryWorker)?, staging: StagingArea,
                 logger: Logger) throws(LoadError) {
        let size = ABIStruct.declaredSize(descriptor)
        let versionsEnd = MemoryLayout<commhost_plugin>.offset(of: \.abi_minor)! + 2
        guard size >= versionsEnd else {
            throw LoadError(.badDescriptor, path: path, reason: "descriptor struct_size \(size) is too small to hold its ABI version (need \(Self.minimumDescriptorSize))")
        }
        let plugin = ABIStruct.plugin(descriptor)
        let major = plugin.abi_major, minor = plugin.abi_minor
        guard major == COMMHOST_ABI_MAJOR else {
            throw LoadError(.badDescriptor, path: path, reason: "ABI major version \(major) is not supported (this host speaks \(COMMHOST_ABI_MAJOR).\(COMMHOST_ABI_MINOR)); rebuild it against this host's comm_plugin.h")
        }
        guard minor <= COMMHOST_ABI_MINOR else {
            throw LoadError(.badDescriptor, path: path, reason: "ABI version \(major).\(minor) is newer than this host's \(COMMHOST_ABI_MAJOR).\(COMMHOST_ABI_MINOR); upgrade commhost or rebuild the plugin against an older header")
        }
        guard size >= Self.minimumDescriptorSize else {
            throw LoadError(.badDescriptor, path: path, reason: "descriptor struct_size \(size) is too small for ABI \(major).\(minor) (need at least \(Self.minimumDescriptorSize))")
        }
        self.path = path
        self.stagedPath = stagedPath
        self.sha256 = sha256
        self.config = config
        self.containsSwift = containsSwift
        self.dl = dl
        self.worker = worker
        self.staging = staging
        self.logger = logger
        abiMajor = major
        abiMinor = minor
        concurrent = plugin.flags & COMMHOST_PLUGIN_CONCURRENT != 0
        name = plugin.name.flatMap { String(validatingCString: $0) } ?? ""
        version = plugin.version.flatMap { String(validatingCString: $0) } ?? ""
        deinitFn = plugin.deinit
        initFn = plugin.`init`
        sessionStartFn = plugin.session_start
        sessionEndFn = plugin.session_end
        sessionWritableFn = plugin.session_writable

        let count = plugin.handler_count
        guard count > 0, let table = plugin.handlers else {
            throw LoadError(.badHandler, path: path, reason: "descriptor lists no handlers")
        }
        // A refusal below drops the handlers made so far: each refers to
        // this library, which would otherwise never be freed.
        defer { if hostTable == nil { handlers = [] } }
        var seen = Set<String>()
        for i in 0..<count {
            guard let raw = table[i] else {
                throw LoadError(.badHandler, path: path, reason: "handler \(i) is NULL")
            }
            let handler: Handler
            do {
                handler = try Handler(raw: raw, library: self)
            } catch {
                throw LoadError(.badHandler, path: path, reason: "handler \(i) \(error.reason)")
            }
            guard seen.insert(handler.name).inserted else {
                throw LoadError(.badHandler, path: path, reason: "handler \(i) repeats the name \"\(handler.name)\"; handler names must be unique")
            }
            handlers.append(handler)
        }
        hostTable = HostAPI.makeTable(for: self)
    }

    /// The ABI 1.0 size of `commhost_plugin`: the least the host accepts.
    static let minimumDescriptorSize = MemoryLayout<commhost_plugin>.offset(of: \.session_writable)! + MemoryLayout<UnsafeRawPointer>.size

    private let initFn: (@convention(c) (UnsafePointer<commhost_host>?, commhost_str, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status)?

    private func initialize(config: [UInt8]) throws(PluginCallError) {
        guard let initFn else { return }
        var out: UnsafeMutableRawPointer? = nil
        try config.withUnsafeBytes { raw in
            let slice = commhost_str(ptr: raw.baseAddress?.assumingMemoryBound(to: CChar.self), len: raw.count)
            return Result { () throws(PluginCallError) in try call { initFn(hostTable, slice, &out) } }
        }.get()
        libraryData = out
    }

    /// How long a callback may run (`handler_timeout_ms` of the library's
    /// targets, the smallest): past it an in-process callback is logged, a
    /// worker-served one gets its worker killed. Default 5 s.
    var slowCallbackNanoseconds: UInt64 {
        get { slowCallback.load(ordering: .relaxed) }
        set { slowCallback.store(newValue, ordering: .relaxed) }
    }

    /// Whether the library has been retired: no call reaches it any more.
    public var isRetired: Bool { retired.load(ordering: .sequentiallyConsistent) }

    /// Whether host open may create comms for this library: false while a
    /// reload is replacing it (and for good once it has), so no comm can be
    /// created for a version that is going away.
    var isAccepting: Bool { accepting.load(ordering: .sequentiallyConsistent) }

    /// Stops (or, for an abandoned reload, resumes) host open for this library.
    func setAccepting(_ value: Bool) {
        accepting.store(value, ordering: .sequentiallyConsistent)
    }

    /// Runs `body` (one plugin callback) with the library's serialization,
    /// in-flight count and error text; throws the status and text when the
    /// callback returns non-zero, and `COMMHOST_ECLOSED` without calling
    /// when the library has been retired.
    /// With `comm` (an open or message callback of that comm, which the
    /// host holds; `handle` is its `opaque`), the comm is this thread's
    /// `CallContext.callComm` during the call, so the plugin's host calls on
    /// it skip the handle table. Unretained, as the comm is held meanwhile.
    @inline(__always)
    func call(on comm: Unmanaged<CommHandle>? = nil, handle: OpaquePointer? = nil,
              _ body: () -> commhost_status) throws(PluginCallError) {
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        guard !retired.load(ordering: .sequentiallyConsistent) else {
            throw PluginCallError(status: COMMHOST_ECLOSED, text: "library \(name) is retired; the call was not made")
        }
        try callUnchecked(on: comm, handle: handle, body)
    }

    @inline(__always)
    private func callUnchecked(on comm: Unmanaged<CommHandle>?, handle: OpaquePointer?,
                               _ body: () -> commhost_status) throws(PluginCallError) {
        let failure = CallContext.currentUnretained._withUnsafeGuaranteedRef { context in
            callUnchecked(on: comm, handle: handle, context: context, body)
        }
        if let failure { throw failure }
    }

    @inline(__always)
    private func callUnchecked(on comm: Unmanaged<CommHandle>?, handle: OpaquePointer?, context: CallContext,
                               _ body: () -> commhost_status) -> PluginCallError? {
        if context.errorText != nil { context.errorText = nil }
        // Saved and restored: a callback on this thread may be under another's.
        let outerToken = context.callCommToken
        let outerComm = context.callComm
        if let comm, let handle {
            context.callCommToken = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
            context.callComm = comm
        }
        let status: commhost_status
        if concurrent {
            status = body()
        } else {
            if !gate.tryLock() {
                // The call in progress may be waiting for a worker to answer
                // frames this thread holds back: write them before waiting.
                context.releaseHeldFrames()
                gate.lock()
            }
            status = body()
            gate.unlock()
        }
        if comm != nil {
            context.callCommToken = outerToken
            context.callComm = outerComm
        }
        guard status != COMMHOST_OK else { return nil }
        let text = context.errorText
        context.errorText = nil
        return PluginCallError(status: status, text: text)
    }

    // MARK: Sessions

    /// Calls session_start; returns the session data the plugin set (also on failure, which is thrown).
    func sessionStart(_ session: SessionHandle, cause: SessionCause, data: inout UnsafeMutableRawPointer?) throws(PluginCallError) {
        guard let sessionStartFn else { return }
        let state = self.libraryData
        var out: UnsafeMutableRawPointer? = nil
        defer { data = out }
        try call { sessionStartFn(state, session.opaque, cause.rawValue, &out) }
    }

    /// Calls session_end.
    func sessionEnd(_ session: SessionHandle, data: UnsafeMutableRawPointer?, cause: SessionCause) {
        guard let sessionEndFn else { return }
        let state = self.libraryData
        try? call {
            sessionEndFn(state, session.opaque, data, cause.rawValue)
            return COMMHOST_OK
        }
    }

    /// Calls session_writable.
    func sessionWritable(_ session: SessionHandle, data: UnsafeMutableRawPointer?) {
        guard let sessionWritableFn else { return }
        let state = self.libraryData
        try? call {
            sessionWritableFn(state, session.opaque, data)
            return COMMHOST_OK
        }
    }

    /// Called (on the worker's reader thread) when the worker serving this
    /// library has died; set by whoever supervises it, dropped on retire.
    var onWorkerDeath: (@Sendable (PluginLibrary, String) -> Void)? {
        get { deathHandler.withLock { $0 } }
        set { deathHandler.withLock { $0 = newValue } }
    }
    private let deathHandler = Locked<(@Sendable (PluginLibrary, String) -> Void)?>(nil)

    fileprivate func workerDied(_ reason: String) {
        onWorkerDeath?(self, reason)
    }

    /// Logs a call with a handle this library does not hold (ABI requirement 14).
    func logHandleMisuse(_ what: String) {
        logger.error("plugin called a host function with a bad handle; refused", [("plugin", .string(name)), ("library", .string(path)),
                                                                                   ("call", .string(what))])
    }

    /// Retires the library: from now on no call reaches it; waits until no
    /// call is in flight, runs deinit, then (with `unmap`, and for C-only
    /// libraries) unloads the code. Swift libraries stay mapped (their staged
    /// copy is still deleted). The caller must have closed or handed off
    /// every comm of the library's handlers and ended its sessions first.
    /// At process exit pass `unmap: false`: nothing is unloaded then.
    /// Calling it twice does nothing.
    public func retire(unmap: Bool = true) {
        guard !retired.exchange(true, ordering: .sequentiallyConsistent) else { return }
        onWorkerDeath = nil
        accepting.store(false, ordering: .sequentiallyConsistent)
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 {
            usleep(100)
        }
        if let deinitFn {
            let state = self.libraryData
            try? callUnchecked(on: nil, handle: nil) {
                deinitFn(state)
                return COMMHOST_OK
            }
        }
        if unmap && !containsSwift { dl?.close() }
        staging.remove(stagedPath)
    }

    private static func readFile(_ path: String) throws(LoadError) -> [UInt8] {
        switch FileSystem.status(path) {
        case .failure(let failure):
            throw LoadError(.unreadable, path: path, reason: "cannot open: \(failure)")
        case .success(let status) where !status.isRegularFile:
            throw LoadError(.notSharedObject, path: path, reason: "not a regular file; expected a shared library (.so)")
        case .success:
            break
        }
        switch FileSystem.readFile(path) {
        case .success(let bytes): return bytes
        case .failure(let failure): throw LoadError(.unreadable, path: path, reason: "cannot read: \(failure)")
        }
    }
}
