/// The libraries a manifest's enabled targets name, each loaded once, and
/// the target -> handler bindings built from them.
public struct PluginSet: Sendable {
    /// Loaded libraries by resolved path.
    public let libraries: [String: PluginLibrary]
    /// target_name -> handler, for every enabled target.
    public let bindings: [String: Handler]
    /// The libraries this load created (the others were reused).
    public let loaded: [PluginLibrary]

    /// Why a manifest's libraries could not all be loaded: one line per problem.
    public struct Failure: Error, Sendable {
        public var problems: [String]
    }

    /// Loads every library the enabled targets of `manifest` use (once per
    /// library, with its config and expected hash) into `staging` and binds
    /// each target to its handler. A library in `reusing` at the same path,
    /// with the same config and a hash the manifest accepts, is reused rather
    /// than loaded again. On any failure, retires what it loaded and throws
    /// every problem found.
    /// `isolation` says how the library bound by some targets is served by
    /// a worker process (nil: loaded in-process).
    static func load(_ manifest: Manifest, staging: StagingArea, reusing current: [String: PluginLibrary] = [:],
                     isolation: ([TargetBinding]) -> (any LibraryWorkerLaunch)? = { _ in nil }) throws(Failure) -> PluginSet {
        var problems: [String] = []
        var libraries: [String: PluginLibrary] = [:]
        var loaded: [PluginLibrary] = []
        var bindings: [String: Handler] = [:]
        var order: [String] = []
        var byLibrary: [String: [TargetBinding]] = [:]
        for target in manifest.enabledTargets {
            if byLibrary[target.libraryPath] == nil { order.append(target.libraryPath) }
            byLibrary[target.libraryPath, default: []].append(target)
        }
        for path in order {
            let targets = byLibrary[path]!
            let config = targets[0].config
            let expected = targets.lazy.compactMap(\.sha256).first
            let library: PluginLibrary
            let launch = isolation(targets)
            if let existing = current[path], existing.config == config, expected == nil || expected?.lowercased() == existing.sha256,
               serves(existing, as: launch) {
                library = existing
            } else {
                do {
                    library = try PluginLibrary.load(path: path, staging: staging, config: config, expectedSHA256: expected,
                                                     isolation: launch, maxFrameBytes: manifest.limits.maxFrameBytes)
                } catch {
                    problems.append("\(manifest.sourcePath):\(targets[0].line): \(targets[0].jsonPath).library: \(error)")
                    continue
                }
                loaded.append(library)
            }
            libraries[path] = library
            applyTimeout(of: targets, to: library)
            for target in targets {
                if let handler = library.handler(named: target.handler) {
                    bindings[target.targetName] = handler
                } else {
                    problems.append("\(manifest.sourcePath):\(target.line): \(target.jsonPath).handler: \(library.noHandlerReason(target.handler))")
                }
            }
        }
        guard problems.isEmpty else {
            for library in loaded { library.retire() }
            throw Failure(problems: problems)
        }
        return PluginSet(libraries: libraries, bindings: bindings, loaded: loaded)
    }

    /// Whether `library` is served as `launch` says: both in-process, or
    /// both by a worker started the same way.
    private static func serves(_ library: PluginLibrary, as launch: (any LibraryWorkerLaunch)?) -> Bool {
        switch (library.worker, launch) {
        case (nil, nil): true
        case let (worker?, launch?): worker.launch.isSame(as: launch)
        default: false
        }
    }

    /// Gives `library` the smallest `handler_timeout_ms` of its `targets`.
    static func applyTimeout(of targets: [TargetBinding], to library: PluginLibrary) {
        library.slowCallbackNanoseconds = UInt64(targets.map(\.handlerTimeoutMS).min() ?? 5000) * 1_000_000
    }
}
