/// What `commhost serve` was asked to do.
public struct ServeOptions: Sendable {
    /// `--manifest`; nil means the default search.
    public var manifestPath: String?
    /// `--dialect`.
    public var dialect: Dialect
    /// `--log-level`.
    public var logLevel: LogLevel
    /// `--watch`: reload libraries when they change on disk (also on when the
    /// manifest's `reload.watch` is true).
    public var watch = false
    /// On shutdown with `--socket`: seconds clients get to take the frames
    /// already sent to them before they are disconnected.
    public var shutdownGraceSeconds = 2.0
    /// `--trace`: the file every frame in and out is written to (`-`: stderr), or nil.
    public var tracePath: String?
    /// The folder holding the running executable (searched for the default
    /// manifest and, last, for libraries).
    public var executableDirectory: String

    /// Options with the defaults: default manifest search, `jupyter`, `info`.
    public init(manifestPath: String? = nil, dialect: Dialect = .jupyter, logLevel: LogLevel = .info, executableDirectory: String) {
        self.manifestPath = manifestPath
        self.dialect = dialect
        self.logLevel = logLevel
        self.executableDirectory = executableDirectory
    }
}
