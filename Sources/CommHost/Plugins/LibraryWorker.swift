import CommPluginAPI

/// How a library is served by a child process (`"isolation": "process"`).
/// The Plugins layer loads through this and never names a worker type:
/// `Worker/`'s `WorkerLaunch` is the one kind.
public protocol LibraryWorkerLaunch: Sendable {
    /// Starts a process serving the staged copy at `stagedPath`, taking
    /// frames up to `maxFrameBytes`. Throws a one-line reason.
    func start(stagedPath: String, maxFrameBytes: Int) throws(LibraryWorkerFailure) -> any LibraryWorker
    /// Whether `other` starts the same process with the same settings: a
    /// loaded library is kept across a manifest reload only then.
    func isSame(as other: any LibraryWorkerLaunch) -> Bool
}

/// A child process serving one library: the stand-in descriptor the host
/// calls as if the library were loaded here, and the process behind it.
/// `Worker/`'s `WorkerProxy` is the one kind.
public protocol LibraryWorker: AnyObject, Sendable {
    /// The descriptor whose functions forward each call to the process.
    var standInDescriptor: UnsafePointer<commhost_plugin> { get }
    /// How the process was started.
    var launch: any LibraryWorkerLaunch { get }
    /// The process id.
    var pid: Int32 { get }
    /// The callback the process was running last (or is running), as
    /// "target, comm id, message kind" text for the crash log.
    var lastCallback: String? { get }
    /// Starts taking what the process sends; `onDeath` runs once, with how
    /// it died, when it exits or is killed.
    func startServing(onDeath: @escaping @Sendable (String) -> Void) throws(LibraryWorkerFailure)
    /// Kills the process; `reason` is logged and becomes its death's reason.
    func kill(because reason: String)
}

/// Why a worker could not be started or served, in one line.
public struct LibraryWorkerFailure: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var reason: String
    public var description: String { reason }

    public init(reason: String) {
        self.reason = reason
    }
}
