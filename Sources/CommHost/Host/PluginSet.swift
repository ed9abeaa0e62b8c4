/// The libraries a manifest's enabled targets name, each loaded once, and
/// the target -> handler bindings built from them.
public final class PluginSet: Sendable {
    /// Loaded libraries by resolved path.
    public let libraries: [String: PluginLibrary]
    /// target_name -> handler, for every enabled target.
    public let bindings: [String: Handler]

    /// Why a manifest's libraries could not all be loaded: one line per problem.
    public struct Failure: Error, Sendable {
        public var problems: [String]
    }

    private init(libraries: [String: PluginLibrary], bindings: [String: Handler]) {
        self.libraries = libraries
        self.bindings = bindings
    }

    /// Loads every library the enabled targets of `manifest` use (once per
    /// library, with its config and expected hash) into `staging` and binds
    /// each target to its handler. On any failure, retires what it loaded and
    /// throws every problem found.
    public static func load(_ manifest: Manifest, staging: StagingArea) throws(Failure) -> PluginSet {
        var problems: [String] = []
        var libraries: [String: PluginLibrary] = [:]
        var bindings: [String: Handler] = [:]
        var order: [String] = []
        var byLibrary: [String: [TargetBinding]] = [:]
        for target in manifest.enabledTargets {
            if byLibrary[target.libraryPath] == nil { order.append(target.libraryPath) }
            byLibrary[target.libraryPath, default: []].append(target)
        }
        for path in order {
            let targets = byLibrary[path]!
            let library: PluginLibrary
            do {
                library = try PluginLibrary.load(path: path, staging: staging, config: targets[0].config,
                                                 expectedSHA256: targets.lazy.compactMap(\.sha256).first)
            } catch {
                problems.append("\(manifest.sourcePath):\(targets[0].line): \(targets[0].jsonPath).library: \(error)")
                continue
            }
            libraries[path] = library
            for target in targets {
                if let handler = library.handler(named: target.handler) {
                    bindings[target.targetName] = handler
                } else {
                    let exported = library.handlerNames.joined(separator: ", ")
                    problems.append("\(manifest.sourcePath):\(target.line): \(target.jsonPath).handler: library \(path) exports no handler \"\(target.handler)\" (it exports: \(exported))")
                }
            }
        }
        guard problems.isEmpty else {
            for library in libraries.values { library.retire() }
            throw Failure(problems: problems)
        }
        return PluginSet(libraries: libraries, bindings: bindings)
    }

    /// Retires every library (deinit, then unload where allowed). Call after
    /// every comm of these libraries is closed.
    public func retireAll() {
        for library in libraries.values { library.retire() }
    }
}
