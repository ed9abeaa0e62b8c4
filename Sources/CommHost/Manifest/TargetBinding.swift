/// One entry of the manifest's `targets`: comms opened with `targetName`
/// are handled by the handler `handler` of the library `library`.
public struct TargetBinding: Sendable, Equatable {
    /// The comm target name clients open (see `TargetName` for the rule).
    public var targetName: String
    /// The `library` value as written in the manifest.
    public var library: String
    /// The library's real path (symlinks and `..` resolved), checked to lie
    /// inside a plugin path and to pass the ownership and mode checks.
    /// Empty for a disabled target, whose library is not looked up.
    public var libraryPath: String
    /// The handler's name inside the library.
    public var handler: String
    /// The JSON text handed to the library's init: the exact source bytes of
    /// the `config` value given for this library (on this target or another
    /// enabled target binding the same library), or `null` when none is.
    public var config: [UInt8]
    /// Whether the target is served (`enabled`, default true).
    public var enabled: Bool
    /// The expected SHA-256 of the library, lowercase hex, when given (on
    /// this target or another enabled target binding the same library).
    public var sha256: String?
    /// Where the library's code runs (`isolation`, default in-process):
    /// given on this target or another enabled target binding the same library.
    public var isolation: Isolation
    /// Milliseconds a callback into the handler may run before it counts as
    /// hung: the target's `handler_timeout_ms`, else `limits.handler_timeout_ms`.
    public var handlerTimeoutMS: Int
    /// The library's worker settings (`worker`, on this target or another
    /// enabled target binding the same library); the defaults when none is
    /// given, and for an in-process target.
    public var worker: WorkerSettings
    /// Where the entry is in the manifest, e.g. `targets[2]`.
    public var jsonPath: String
    /// 1-based line of the entry's opening brace.
    public var line: Int

    /// Creates a binding.
    public init(targetName: String, library: String, libraryPath: String, handler: String,
                config: [UInt8] = Array("null".utf8), enabled: Bool = true, sha256: String? = nil,
                isolation: Isolation = .inProcess, handlerTimeoutMS: Int = ManifestLimits.defaults.handlerTimeoutMS,
                worker: WorkerSettings = .defaults, jsonPath: String, line: Int) {
        self.targetName = targetName
        self.library = library
        self.libraryPath = libraryPath
        self.handler = handler
        self.config = config
        self.enabled = enabled
        self.sha256 = sha256
        self.isolation = isolation
        self.handlerTimeoutMS = handlerTimeoutMS
        self.worker = worker
        self.jsonPath = jsonPath
        self.line = line
    }
}
