/// The host admin's manifest (`manifest/commhost.json`, described field by
/// field in docs/MANIFEST.md): which comm target names are served, by which
/// handler of which library, from which directories, within which limits.
/// Only a library the manifest names can ever be loaded; a client's
/// `target_name` only looks a binding up.
public struct Manifest: Sendable, Equatable {
    /// Absolute path of the manifest file (its directory's symlinks resolved).
    public var sourcePath: String
    /// The format version (`version`); this host reads version 1.
    public var version: Int
    /// The directories searched for libraries, as real paths, in search
    /// order: the `plugin_paths` (relative ones taken from the manifest's
    /// directory), then the executable's directory.
    public var pluginPaths: [String]
    /// Every entry of `targets`, in file order, disabled ones included.
    public var targets: [TargetBinding]
    /// `limits`, with defaults for absent keys.
    public var limits: ManifestLimits
    /// `reload`, with defaults for absent keys.
    public var reload: ReloadSettings

    /// The default manifest location, relative to the current directory.
    public static let defaultRelativePath = "manifest/commhost.json"

    /// Creates a manifest from its parts (for tests and tools; the host uses `load`).
    public init(sourcePath: String, version: Int, pluginPaths: [String], targets: [TargetBinding],
                limits: ManifestLimits = .defaults, reload: ReloadSettings = .defaults) {
        self.sourcePath = sourcePath
        self.version = version
        self.pluginPaths = pluginPaths
        self.targets = targets
        self.limits = limits
        self.reload = reload
    }

    /// Reads the manifest at `path` (relative paths from the current
    /// directory), validates it, resolves every enabled target's library
    /// inside the plugin paths or `executableDirectory`, and applies the
    /// ownership and mode checks to the manifest and each library. Does not
    /// load any library (handlers are checked when the loader loads them, or
    /// by `ManifestCheck`). Fails with every problem found, not just the first.
    public static func load(path: String, executableDirectory: String) -> Result<Manifest, ManifestProblems> {
        let evaluation = ManifestEvaluation(path: path, executableDirectory: executableDirectory)
        if evaluation.problems.isEmpty, let manifest = evaluation.manifest {
            return .success(manifest)
        }
        if evaluation.problems.isEmpty {
            return .failure(ManifestProblems(problems: [ManifestProblem(file: evaluation.sourcePath, line: nil, path: "", message: "the manifest could not be read")]))
        }
        return .failure(ManifestProblems(problems: evaluation.problems))
    }

    /// The enabled binding for `targetName`, if any. The only way a target
    /// name reaches a library.
    public func binding(for targetName: String) -> TargetBinding? {
        targets.first { $0.enabled && $0.targetName == targetName }
    }

    /// The enabled bindings, in file order.
    public var enabledTargets: [TargetBinding] {
        targets.filter(\.enabled)
    }
}
