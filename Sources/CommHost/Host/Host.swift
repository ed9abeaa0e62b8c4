import CommPluginAPI
import Glibc

/// The composition root: manifest -> plugins -> comm manager -> transport.
public enum Host {
    /// commhost's own version.
    public static let version = "0.4.0"

    /// `commhost --version`: commhost's version and the plugin ABI it serves
    /// (a plugin built for the same major and this minor or lower loads).
    public static var versionLine: String {
        "commhost \(version) (plugin ABI \(COMMHOST_ABI_MAJOR).\(COMMHOST_ABI_MINOR))"
    }

    /// The manifest `serve` and `check` use when none is given:
    /// `manifest/commhost.json` under the current directory if it exists,
    /// else the one under the executable's directory.
    public static func defaultManifestPath(executableDirectory: String) -> String {
        let local = Manifest.defaultRelativePath
        if access(local, F_OK) == 0 { return local }
        return executableDirectory + "/" + local
    }

    /// What serving needs once the manifest and its libraries are loaded;
    /// shared by every transport.
    struct Serving {
        let logger: Logger
        let manifest: Manifest
        let plugins: PluginSet
        let staging: StagingArea
        let manager: CommManager
        let reloader: Reloader

        /// Retires every library (runs each deinit) and removes the staging
        /// area. Call after every session has ended.
        func finish() {
            reloader.retireAll()
            staging.removeAll()
        }
    }

    /// Loads the manifest and its libraries and builds the comm manager and
    /// reloader. Returns nil, after logging every problem, when the manifest
    /// or a library is refused.
    static func startServing(_ options: ServeOptions) -> Serving? {
        let logger = Logger(minimumLevel: options.logLevel)
        HostAPI.logger.withLock { $0 = logger }
        let path = options.manifestPath ?? defaultManifestPath(executableDirectory: options.executableDirectory)
        let manifest: Manifest
        switch Manifest.load(path: path, executableDirectory: options.executableDirectory) {
        case .success(let loaded): manifest = loaded
        case .failure(let failure):
            for problem in failure.problems { logger.error("manifest problem: \(problem)") }
            logger.error("refusing to serve: the manifest has \(failure.problems.count) problem(s)", [("manifest", .string(path))])
            return nil
        }
        var trace: FrameTrace?
        if let tracePath = options.tracePath {
            do {
                trace = try FrameTrace(path: tracePath)
            } catch {
                logger.error("refusing to serve: cannot open the --trace file: \(error)", [("trace", .string(tracePath))])
                return nil
            }
        }
        let staging: StagingArea
        let plugins: PluginSet
        do {
            staging = try StagingArea()
        } catch {
            logger.error("refusing to serve: cannot stage libraries: \(error)")
            return nil
        }
        do {
            let workerExecutable = options.executableDirectory + "/commhost"
            plugins = try PluginSet.load(manifest, staging: staging) { WorkerLaunch(targets: $0, executable: workerExecutable) }
        } catch {
            for problem in error.problems { logger.error("plugin problem: \(problem)") }
            logger.error("refusing to serve: \(error.problems.count) librar\(error.problems.count == 1 ? "y was" : "ies were") refused", [("manifest", .string(path))])
            staging.removeAll()
            return nil
        }

        for library in plugins.libraries.values {
            logger.info("loaded library", [("library", .string(library.path)), ("name", .string(library.name)),
                                           ("version", .string(library.version)), ("sha256", .string(library.sha256))])
        }

        let manager = CommManager(targets: TargetTable(plugins.bindings), limits: manifest.limits, dialect: options.dialect, logger: logger, trace: trace)
        let reloader = Reloader(manifest: manifest, plugins: plugins, manager: manager, staging: staging, logger: logger,
                                executableDirectory: options.executableDirectory, watch: options.watch)
        return Serving(logger: logger, manifest: manifest, plugins: plugins, staging: staging, manager: manager, reloader: reloader)
    }

    /// Serves one session on stdin/stdout until end of input, SIGINT or
    /// SIGTERM; then closes every comm (cause: shutdown), runs every
    /// library's deinit and returns 0. Returns 1 when the manifest or a
    /// library is refused, after logging every problem.
    public static func serveStdio(_ options: ServeOptions) -> Int32 {
        HostSignals.block()
        guard let serving = startServing(options) else { return 1 }
        let (logger, manifest, plugins, manager, reloader) = (serving.logger, serving.manifest, serving.plugins, serving.manager, serving.reloader)
        let limits = manager.limits
        let session = manager.makeSession()
        let transport = StreamTransport(session: session, input: STDIN_FILENO, output: STDOUT_FILENO, limits: limits, logger: logger)

        /// Guards whether shutdown has begun (signals, end of input and a session's early end race to it).
        let stopped = Locked(false)
        let stop: @Sendable (String) -> Void = { why in
            stopped.withLock { done in
                guard !done else { return }
                done = true
                logger.info("shutting down", [("reason", .string(why))])
                manager.shutdown()
                transport.finishOutput()
                serving.finish()
                logger.info("stopped")
            }
        }
        do throws(Errno) {
            try HostSignals.handle([
                SIGINT: { stop("SIGINT"); exit(0) },
                SIGTERM: { stop("SIGTERM"); exit(0) },
                SIGHUP: { reloader.reloadManifest(reason: "SIGHUP") },
            ])
        } catch {
            logger.error("refusing to serve: cannot start the thread that takes signals: \(error)")
            stop("no signal thread")
            return 1
        }
        logger.info("serving on stdio", [("manifest", .string(manifest.sourcePath)), ("dialect", .string(options.dialect.rawValue)),
                                         ("targets", .string(plugins.bindings.keys.sorted().joined(separator: ",")))])
        transport.run()
        stop(session.earlyEndReason ?? "end of input")
        return 0
    }
}
