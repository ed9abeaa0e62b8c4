/// `commhost check [FILE]`: everything the host would do with a manifest
/// short of serving. Validates it (`Manifest.load`'s checks), then loads each
/// enabled library through the real loader in a throwaway staging area —
/// running its init with its config and checking its `sha256` against the
/// staged copy — confirms every bound handler exists, and retires the
/// libraries again.
public enum ManifestCheck {
    /// Checks the manifest at `path` and returns what to print and the exit
    /// code: 0 when there is no problem, 1 when there is any. Problems are
    /// printed one per line (`<file>:<line>: <path>: <message>`), in file
    /// order; with `json`, one object:
    /// `{"ok":bool,"problems":[{"file":…,"line":…|null,"path":…,"message":…}]}`.
    /// When clean, the text form prints one `<file>: ok …` summary line.
    public static func run(path: String, executableDirectory: String, json: Bool) -> (output: String, exitCode: Int32) {
        let evaluation = ManifestEvaluation(path: path, executableDirectory: executableDirectory)
        var problems = evaluation.problems
        var loaded = 0
        if !evaluation.loadableLibraries.isEmpty {
            do {
                let staging = try StagingArea()
                defer { staging.removeAll() }
                for library in evaluation.loadableLibraries {
                    if try checkLibrary(library, staging: staging, file: evaluation.sourcePath, workerExecutable: executableDirectory + "/commhost",
                                        problems: &problems) { loaded += 1 }
                }
            } catch {
                problems.append(ManifestProblem(file: evaluation.sourcePath, line: nil, path: "",
                                                message: "cannot check the libraries: \(error.description)"))
            }
        }
        problems = problems.enumerated().sorted { a, b in
            let (lineA, lineB) = (a.element.line ?? 0, b.element.line ?? 0)
            return lineA != lineB ? lineA < lineB : a.offset < b.offset
        }.map(\.element)

        if json {
            let items = problems.map { problem in
                "{\"file\":\(JSONText.string(problem.file)),\"line\":\(problem.line.map(String.init) ?? "null")"
                    + ",\"path\":\(JSONText.string(problem.path)),\"message\":\(JSONText.string(problem.message))}"
            }
            return ("{\"ok\":\(problems.isEmpty),\"problems\":[\(items.joined(separator: ","))]}", problems.isEmpty ? 0 : 1)
        }
        if problems.isEmpty {
            let targets = evaluation.manifest?.targets ?? []
            let enabled = targets.filter(\.enabled).count
            let summary = "\(evaluation.sourcePath): ok: \(enabled) enabled target\(enabled == 1 ? "" : "s")"
                + (targets.count > enabled ? " (\(targets.count - enabled) disabled)" : "")
                + ", \(loaded) librar\(loaded == 1 ? "y" : "ies") loaded and every handler found"
            return (summary, 0)
        }
        return (problems.map(\.description).joined(separator: "\n"), 1)
    }

    /// Loads one library with its config and expected hash, records a
    /// problem for the load failure or for each bound handler it lacks, and
    /// retires it. Returns whether it loaded. Throws only when staging fails.
    /// A library whose targets isolate it is loaded in a worker, as serve
    /// would, so a plugin that crashes in init cannot take `check` down.
    private static func checkLibrary(_ library: ManifestEvaluation.LoadableLibrary, staging: StagingArea,
                                     file: String, workerExecutable: String, problems: inout [ManifestProblem]) throws(LoadError) -> Bool {
        guard let first = library.targets.first else { return false }
        let plugin: PluginLibrary
        do {
            plugin = try PluginLibrary.load(path: library.path, staging: staging, config: first.binding.config,
                                            expectedSHA256: first.binding.sha256,
                                            isolation: WorkerLaunch(targets: library.targets.map(\.binding), executable: workerExecutable))
        } catch {
            if error.kind == .staging { throw error }
            if error.kind == .hashMismatch, let source = library.sha256Source {
                problems.append(ManifestProblem(file: file, line: source.line, path: source.path, message: "\(library.path): \(error.reason)"))
            } else {
                problems.append(ManifestProblem(file: file, line: first.lines["library"] ?? first.binding.line,
                                                path: first.binding.jsonPath + ".library", message: "cannot load \(library.path): \(error.reason)"))
            }
            return false
        }
        defer { plugin.retire() }
        for target in library.targets where plugin.handler(named: target.binding.handler) == nil {
            problems.append(ManifestProblem(
                file: file, line: target.lines["handler"] ?? target.binding.line, path: target.binding.jsonPath + ".handler",
                message: plugin.noHandlerReason(target.binding.handler)))
        }
        return true
    }
}
