import Dispatch
import Glibc

/// Owns what is loaded while serving, and changes it safely: a library
/// rebuilt on disk (hot reload) or an edited manifest (SIGHUP or a watched
/// change). Work runs one operation at a time on its own queue; each either
/// switches completely or changes nothing and logs why.
public final class Reloader: @unchecked Sendable {
    // @unchecked: `manifest`, `libraries` and `watcher` are only touched on `queue`.
    private let manager: CommManager
    private let staging: StagingArea
    private let logger: Logger
    private let executableDirectory: String
    private let forceWatch: Bool
    private let queue = DispatchQueue(label: "commhost.reload")
    private var manifest: Manifest
    private var libraries: [String: PluginLibrary]
    private var watcher: FileWatcher?
    /// When each worker-served library crashed, within its crash window (by path).
    private var crashes: [String: [Double]] = [:]
    /// The `commhost` executable that runs workers.
    private var workerExecutable: String { executableDirectory + "/commhost" }

    /// A reloader for what `plugins` loaded from `manifest`. With `watch`
    /// (or `reload.watch` in the manifest) it watches every loaded library
    /// and the manifest file.
    public init(manifest: Manifest, plugins: PluginSet, manager: CommManager, staging: StagingArea,
                logger: Logger, executableDirectory: String, watch: Bool) {
        self.manifest = manifest
        self.libraries = plugins.libraries
        self.manager = manager
        self.staging = staging
        self.logger = logger
        self.executableDirectory = executableDirectory
        self.forceWatch = watch
        queue.sync {
            updateWatcher()
            for library in libraries.values { supervise(library) }
        }
    }

    /// Re-reads the manifest and applies the difference (SIGHUP).
    public func reloadManifest(reason: String) {
        queue.async { self.applyManifest(reason: reason) }
    }

    /// Reloads the library at `path` if its content changed; `seenAt` is
    /// when the change was first seen (monotonic seconds), for the log.
    public func libraryChanged(path: String, seenAt: Double) {
        queue.async { self.reloadLibrary(path: path, seenAt: seenAt) }
    }

    /// Waits for any reload in progress, stops watching, and retires every
    /// library. Call after every session has ended.
    public func retireAll() {
        queue.sync {
            watcher?.stop()
            watcher = nil
            for library in libraries.values { library.retire(unmap: false) }
            libraries = [:]
        }
    }

    // MARK: Library reload

    private func reloadLibrary(path: String, seenAt: Double) {
        if path == manifest.sourcePath { return applyManifest(reason: "manifest file changed") }
        guard let old = libraries[path] else { return }
        let targets = manifest.enabledTargets.filter { $0.libraryPath == path }
        if let digest = Self.fileHash(path), digest == old.sha256 {
            logger.debug("library file touched but unchanged", [("library", .string(path))])
            return
        }
        func refuse(_ step: String, _ reason: String) {
            logger.error("reload failed; the old version keeps serving",
                         [("library", .string(path)), ("step", .string(step)), ("reason", .string(reason)), ("old_sha256", .string(old.sha256))])
        }
        let new: PluginLibrary
        do {
            new = try PluginLibrary.load(path: path, staging: staging, config: old.config,
                                         expectedSHA256: targets.lazy.compactMap(\.sha256).first,
                                         isolation: WorkerLaunch(targets: targets, executable: workerExecutable),
                                         maxFrameBytes: manifest.limits.maxFrameBytes)
        } catch {
            return refuse(Self.step(for: error.kind), error.reason)
        }
        var table = manager.targets.all
        for target in targets {
            guard let handler = new.handler(named: target.handler) else {
                new.retire()
                return refuse("handlers", "new version: \(new.noHandlerReason(target.handler)); target \(target.targetName) is bound to it")
            }
            table[target.targetName] = handler
        }
        let report: HandlerSwap.Report
        do {
            report = try HandlerSwap.run(manager: manager, table: table) { comm in
                guard comm.handler.library === old else { return .keep }
                guard let handler = new.handler(named: comm.handler.name) else { return .close(.reload) }
                return .move(handler)
            }
        } catch {
            new.retire()
            return refuse(error.step, error.reason)
        }
        libraries[path] = new
        PluginSet.applyTimeout(of: targets, to: new)
        supervise(new)
        old.retire()
        manager.countReload()
        let switched = MonotonicClock.seconds()
        logger.info("reloaded library", [
            ("library", .string(path)), ("old_sha256", .string(old.sha256)), ("new_sha256", .string(new.sha256)),
            ("handed_off", .int(report.handedOff)), ("closed", .int(report.closed)),
            ("swap_ms", .double(Self.millis(switched - seenAt))), ("held_ms", .double(Self.millis(report.heldSeconds))),
        ])
    }

    // MARK: Workers

    /// Has a worker-served library's death reported to this reloader.
    private func supervise(_ library: PluginLibrary) {
        guard library.worker != nil else { return }
        // Strong, not weak (a weak reference's side table is reachable only
        // through a tagged pointer, which LeakSanitizer reports as a leak at
        // exit); retiring the library drops the handler and so the cycle.
        library.onWorkerDeath = { library, reason in
            self.queue.async { self.workerDied(library, reason: reason) }
        }
        manager.stats.worker(library.path).started(pid: library.worker?.pid ?? 0)
    }

    /// The `comm_close` data of a comm whose worker died.
    static let crashedData = Array(#"{"reason":"handler crashed"}"#.utf8)

    /// A worker died (a signal, an exit, a missed deadline): its comms are
    /// closed with `{"reason":"handler crashed"}` at once (no callback can
    /// run in a dead process, and no session_end is owed), its targets refuse
    /// comm_open with the reason meanwhile, and it is restarted after the
    /// backoff, or its targets are disabled once it crashed `max_crashes`
    /// times within `crash_window_ms`. Every other library keeps serving.
    private func workerDied(_ library: PluginLibrary, reason: String) {
        let path = library.path
        guard libraries[path] === library, !library.isRetired else { return }
        let targets = manifest.enabledTargets.filter { $0.libraryPath == path }
        guard let settings = targets.first?.worker else { return }
        let now = MonotonicClock.seconds()
        var times = (crashes[path] ?? []).filter { now - $0 < Double(settings.crashWindowMS) / 1000 }
        times.append(now)
        crashes[path] = times
        let last = library.worker?.lastCallback ?? "none"
        manager.stats.worker(path).crashed(reason: reason)
        logger.error("worker died; closing its comms", [("library", .string(path)), ("plugin", .string(library.name)),
                                                         ("pid", .int(Int(library.worker?.pid ?? 0))), ("reason", .string(reason)),
                                                         ("last_callback", .string(last)),
                                                         ("targets", .string(targets.map(\.targetName).sorted().joined(separator: ","))),
                                                         ("crashes_in_window", .int(times.count))])
        let disable = times.count >= settings.maxCrashes
        let why = disable
            ? "handler crashed \(times.count) times within \(settings.crashWindowMS) ms; target disabled (fix the plugin, then edit the manifest or send SIGHUP)"
            : "handler crashed; restarting"
        var table = manager.targets.all
        for target in targets { table[target.targetName] = nil }
        manager.targets.setUnavailable(Dictionary(uniqueKeysWithValues: targets.map { ($0.targetName, why) }))
        _ = try? HandlerSwap.run(manager: manager, table: table) { comm in
            comm.handler.library === library ? .close(.removed, data: Self.crashedData) : .keep
        }
        libraries[path] = nil
        library.retire()
        if disable {
            // Counted before it is logged, so whoever reads the log line sees it in stats too.
            manager.stats.worker(path).disabled()
            logger.error("target disabled: its worker crashed too often", [("library", .string(path)), ("crashes", .int(times.count)),
                                                                            ("window_ms", .int(settings.crashWindowMS)),
                                                                            ("targets", .string(targets.map(\.targetName).sorted().joined(separator: ",")))])
            return
        }
        let delay = settings.restartDelayMS(crashesInWindow: times.count)
        queue.asyncAfter(deadline: .now() + .milliseconds(delay)) { self.restartWorker(path: path) }
    }

    /// Starts a new worker for `path` after a crash and serves its targets
    /// again; every session starts afresh for it (cause `started`).
    private func restartWorker(path: String) {
        guard libraries[path] == nil else { return }
        let targets = manifest.enabledTargets.filter { $0.libraryPath == path }
        guard let first = targets.first else { return }
        let new: PluginLibrary
        do {
            new = try PluginLibrary.load(path: path, staging: staging, config: first.config,
                                         expectedSHA256: targets.lazy.compactMap(\.sha256).first,
                                         isolation: WorkerLaunch(targets: targets, executable: workerExecutable),
                                         maxFrameBytes: manifest.limits.maxFrameBytes)
        } catch {
            logger.error("worker restart failed; trying again after the backoff", [("library", .string(path)), ("reason", .string(error.reason))])
            let delay = first.worker.restartDelayMS(crashesInWindow: crashes[path]?.count ?? 1)
            queue.asyncAfter(deadline: .now() + .milliseconds(max(delay, 100))) { self.restartWorker(path: path) }
            return
        }
        var table = manager.targets.all
        for target in targets {
            guard let handler = new.handler(named: target.handler) else {
                logger.error("worker restart: the library no longer exports a handler; target stays down",
                             [("library", .string(path)), ("reason", .string(new.noHandlerReason(target.handler)))])
                continue
            }
            table[target.targetName] = handler
        }
        _ = try? HandlerSwap.run(manager: manager, table: table, freshSessions: true) { _ in .keep }
        manager.targets.setUnavailable(Dictionary(uniqueKeysWithValues: targets.map { ($0.targetName, nil as String?) }))
        libraries[path] = new
        PluginSet.applyTimeout(of: targets, to: new)
        supervise(new)
        manager.stats.worker(path).restarted()
        logger.info("worker restarted", [("library", .string(path)), ("pid", .int(Int(new.worker?.pid ?? 0)))])
    }

    // MARK: Manifest reload

    private func applyManifest(reason: String) {
        let path = manifest.sourcePath
        let next: Manifest
        switch Manifest.load(path: path, executableDirectory: executableDirectory) {
        case .success(let loaded): next = loaded
        case .failure(let failure):
            for problem in failure.problems { logger.error("manifest problem: \(problem)") }
            logger.error("manifest reload refused; the old configuration keeps serving",
                         [("manifest", .string(path)), ("reason", .string(reason)), ("problems", .int(failure.problems.count))])
            return
        }
        let set: PluginSet
        do {
            set = try PluginSet.load(next, staging: staging, reusing: libraries) { WorkerLaunch(targets: $0, executable: workerExecutable) }
        } catch {
            for problem in error.problems { logger.error("plugin problem: \(problem)") }
            logger.error("manifest reload refused; the old configuration keeps serving", [("manifest", .string(path)), ("reason", .string(reason))])
            return
        }
        let oldTable = manager.targets.all
        let kept = Set(set.libraries.values.map { ObjectIdentifier($0) })
        let report: HandlerSwap.Report
        do {
            report = try HandlerSwap.run(manager: manager, table: set.bindings) { comm in
                if oldTable[comm.targetName] === comm.handler {
                    guard let handler = set.bindings[comm.targetName] else { return .close(.removed) }
                    return .move(handler)
                }
                // A comm the plugin opened toward the client: it follows its library.
                let library = comm.handler.library
                if kept.contains(ObjectIdentifier(library)) { return .keep }
                if let replacement = set.libraries[library.path], let handler = replacement.handler(named: comm.handler.name) {
                    return .move(handler)
                }
                return .close(.removed)
            }
        } catch {
            for library in set.loaded { library.retire() }
            logger.error("manifest reload refused; the old configuration keeps serving",
                         [("manifest", .string(path)), ("step", .string(error.step)), ("reason", .string(error.reason))])
            return
        }
        for library in libraries.values where !kept.contains(ObjectIdentifier(library)) { library.retire() }
        let added = Set(set.bindings.keys).subtracting(oldTable.keys)
        let removed = Set(oldTable.keys).subtracting(set.bindings.keys)
        let changed = set.bindings.filter { name, handler in oldTable[name].map { $0 !== handler } ?? false }.keys
        libraries = set.libraries
        for library in set.loaded {
            supervise(library)
            // A library loaded anew starts with a clean crash record, and
            // targets a crash had made unavailable are served (or gone) again.
            crashes[library.path] = nil
        }
        manager.targets.clearUnavailable()
        manifest = next
        manager.countReload()
        updateWatcher()
        logger.info("manifest reloaded", [
            ("manifest", .string(path)), ("reason", .string(reason)),
            ("added", .string(added.sorted().joined(separator: ","))), ("removed", .string(removed.sorted().joined(separator: ","))),
            ("changed", .string(changed.sorted().joined(separator: ","))), ("handed_off", .int(report.handedOff)),
            ("closed", .int(report.closed)), ("held_ms", .double(Self.millis(report.heldSeconds))),
        ])
    }

    // MARK: Watching

    private func updateWatcher() {
        guard forceWatch || manifest.reload.watch else {
            watcher?.stop()
            watcher = nil
            return
        }
        if watcher == nil {
            do {
                // Strong, as in supervise; retireAll and a manifest that stops
                // watching drop the watcher and so the cycle.
                watcher = try FileWatcher(debounceMilliseconds: manifest.reload.debounceMS, logger: logger) { path, seen in
                    self.libraryChanged(path: path, seenAt: seen)
                }
                watcher?.start()
            } catch {
                logger.error("cannot watch for reloads: inotify failed", [("error", .string("\(error)"))])
                return
            }
        }
        watcher?.watch(files: Set(libraries.keys).union([manifest.sourcePath]))
        logger.info("watching for reloads", [("files", .int(libraries.count + 1)), ("debounce_ms", .int(manifest.reload.debounceMS))])
    }

    // MARK: Helpers

    private static func step(for kind: LoadError.Kind) -> String {
        switch kind {
        case .unreadable, .staging: "read"
        case .notSharedObject: "check ELF"
        case .hashMismatch: "check sha256"
        case .dlopenFailed: "dlopen"
        case .noEntry, .badDescriptor: "check ABI"
        case .badHandler: "handlers"
        case .initFailed: "init"
        }
    }

    private static func fileHash(_ path: String) -> String? {
        guard case .success(let bytes) = FileSystem.readFile(path) else { return nil }
        return SHA256.hex(SHA256.hash(bytes))
    }

    private static func millis(_ seconds: Double) -> Double { (seconds * 1_000_000).rounded() / 1000 }
}
