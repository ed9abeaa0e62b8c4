import CommPluginAPI
import Glibc
import Synchronization

/// A loaded plugin library: a staged copy, dlopened, its descriptor checked
/// and its init run. Calls into it are serialized unless its descriptor sets
/// `COMMHOST_PLUGIN_CONCURRENT`. `retire()` runs deinit and unloads it when
/// that is safe (never for Swift code).
public final class PluginLibrary: @unchecked Sendable {
    // @unchecked: stored properties are immutable after load except `retired`
    // and the call bookkeeping, which `gate` and `inFlight` guard.

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
    /// What init returned, passed to open and restore.
    private(set) var state: UnsafeMutableRawPointer?

    private let dl: DynamicLibrary
    private let staging: StagingArea
    private let deinitFn: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?
    private let gate = Mutex(false)
    private let inFlight = Atomic<Int>(0)

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
    public static func load(path: String, staging: StagingArea, config: [UInt8] = Array("null".utf8),
                            expectedSHA256: String? = nil) throws(LoadError) -> PluginLibrary {
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
                                        descriptor: descriptor, dl: dl, staging: staging)
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

    private init(path: String, stagedPath: String, sha256: String, config: [UInt8], containsSwift: Bool,
                 descriptor: UnsafePointer<commhost_plugin>, dl: DynamicLibrary, staging: StagingArea) throws(LoadError) {
        let size = descriptor.pointee.struct_size
        let versionsEnd = MemoryLayout<commhost_plugin>.offset(of: \.abi_minor)! + 2
        guard size >= versionsEnd else {
            throw LoadError(.badDescriptor, path: path, reason: "descriptor struct_size \(size) is too small to hold its ABI version (need \(Self.minimumDescriptorSize))")
        }
        let major = descriptor.pointee.abi_major, minor = descriptor.pointee.abi_minor
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
        self.staging = staging
        abiMajor = major
        abiMinor = minor
        concurrent = descriptor.pointee.flags & COMMHOST_PLUGIN_CONCURRENT != 0
        name = descriptor.pointee.name.flatMap { String(validatingCString: $0) } ?? ""
        version = descriptor.pointee.version.flatMap { String(validatingCString: $0) } ?? ""
        deinitFn = descriptor.pointee.deinit
        initFn = descriptor.pointee.`init`

        let count = descriptor.pointee.handler_count
        guard count > 0, let table = descriptor.pointee.handlers else {
            throw LoadError(.badHandler, path: path, reason: "descriptor lists no handlers")
        }
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
    }

    /// Smallest descriptor of ABI 1.0: everything up to handler_count.
    static let minimumDescriptorSize = MemoryLayout<commhost_plugin>.offset(of: \.handler_count)! + MemoryLayout<Int>.size

    private let initFn: (@convention(c) (UnsafePointer<commhost_host_api>?, commhost_str, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status)?

    private func initialize(config: [UInt8]) throws(PluginCallError) {
        guard let initFn else { return }
        var out: UnsafeMutableRawPointer? = nil
        try config.withUnsafeBytes { raw in
            let slice = commhost_str(ptr: raw.baseAddress?.assumingMemoryBound(to: CChar.self), len: raw.count)
            return Result { () throws(PluginCallError) in try call { initFn(HostAPI.table, slice, &out) } }
        }.get()
        state = out
    }

    /// Runs `body` (one plugin callback) with the library's serialization,
    /// in-flight count and error text; throws the status and text when the
    /// callback returns non-zero.
    @inline(__always)
    func call(_ body: () -> commhost_status) throws(PluginCallError) {
        let context = CallContext.current
        let outer = context.library
        context.library = self
        context.errorText = nil
        inFlight.add(1, ordering: .acquiring)
        let status = concurrent ? body() : gate.withLock { _ in body() }
        inFlight.subtract(1, ordering: .releasing)
        context.library = outer
        if status != COMMHOST_OK {
            let text = context.errorText
            context.errorText = nil
            throw PluginCallError(status: status, text: text)
        }
    }

    /// Runs deinit and, for C-only libraries, unloads the code once no call
    /// is in flight. Swift libraries stay mapped (their staged copy is still
    /// deleted). The caller must have closed or handed off every comm of the
    /// library's handlers first. Calling it twice does nothing.
    public func retire() {
        let first = gate.withLock { retired in
            defer { retired = true }
            return !retired
        }
        guard first else { return }
        if let deinitFn {
            let state = self.state
            try? call {
                deinitFn(state)
                return COMMHOST_OK
            }
        }
        while inFlight.load(ordering: .acquiring) > 0 {
            usleep(100)
        }
        if !containsSwift { dl.close() }
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
