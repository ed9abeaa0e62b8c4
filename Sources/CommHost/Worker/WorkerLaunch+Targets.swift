import CommPluginAPI

/// How the Plugins layer starts and holds a worker: `WorkerLaunch` is its
/// `LibraryWorkerLaunch`, `WorkerProxy` its `LibraryWorker`.
extension WorkerLaunch: LibraryWorkerLaunch {
    /// How the library bound by `targets` is served: nil in-process (or
    /// without an `executable`, as `check` of a manifest with no binary
    /// beside it); for `"isolation": "process"`, a worker with the library's
    /// settings and the smallest `handler_timeout_ms` of its targets as the
    /// callback deadline.
    init?(targets: [TargetBinding], executable: String?) {
        guard let executable, let first = targets.first, first.isolation == .process else { return nil }
        self.init(executable: executable, handlerTimeoutMilliseconds: targets.map(\.handlerTimeoutMS).min() ?? 5000,
                  addressSpaceBytes: first.worker.addressSpaceBytes, cpuSeconds: first.worker.cpuSeconds,
                  openFiles: first.worker.openFiles)
    }

    public func start(stagedPath: String, maxFrameBytes: Int) throws(LibraryWorkerFailure) -> any LibraryWorker {
        do {
            let (process, remote) = try WorkerProcess.start(stagedPath: stagedPath, options: self, maxFrameBytes: maxFrameBytes)
            return WorkerProxy(process: process, remote: remote)
        } catch {
            throw LibraryWorkerFailure(reason: error.reason)
        }
    }

    public func isSame(as other: any LibraryWorkerLaunch) -> Bool {
        (other as? WorkerLaunch) == self
    }
}

extension WorkerProxy: LibraryWorker {
    var standInDescriptor: UnsafePointer<commhost_plugin> { descriptor }
    var launch: any LibraryWorkerLaunch { process.options }
    var pid: Int32 { process.pid }
    var lastCallback: String? { process.lastCallback }

    func startServing(onDeath: @escaping @Sendable (String) -> Void) throws(LibraryWorkerFailure) {
        process.onDeath = onDeath
        do {
            try process.startReading()
        } catch {
            throw LibraryWorkerFailure(reason: "cannot start the thread that reads from it: \(error)")
        }
    }

    func kill(because reason: String) {
        process.kill(because: reason)
    }
}
