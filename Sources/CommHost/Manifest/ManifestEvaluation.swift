/// One complete look at a manifest file: read, parse, validate, resolve
/// plugin paths and libraries, and apply the ownership and mode checks,
/// collecting every problem. Loads nothing. Keeps what it could work out
/// even when there are problems, so `commhost check` can go on to load the
/// libraries that are fine.
struct ManifestEvaluation {
    /// An enabled, complete target whose library was found, lies inside a
    /// plugin path and passed the safety checks: one `commhost check` may load.
    struct LoadableTarget {
        var binding: TargetBinding
        /// 1-based lines of the entry's fields, by key (`library`, `handler`, ...).
        var lines: [String: Int]
    }

    /// Where a library's config, sha256, isolation or worker was given.
    struct Source {
        var path: String
        var line: Int
    }

    /// The libraries the loadable targets use, in first-use order, with
    /// where their `sha256` came from (for placing a mismatch).
    struct LoadableLibrary {
        var path: String
        var targets: [LoadableTarget]
        var sha256Source: Source?
    }

    let sourcePath: String
    private(set) var problems: [ManifestProblem] = []
    /// The manifest as far as it could be read; meaningful when `problems` is empty.
    private(set) var manifest: Manifest?
    private(set) var loadableLibraries: [LoadableLibrary] = []

    init(path: String, executableDirectory: String) {
        let absolute = FileSystem.absolute(path, relativeTo: FileSystem.currentDirectory())
        let name = absolute.split(separator: "/").last.map(String.init) ?? absolute
        if case .success(let directory) = FileSystem.realPath(FileSystem.directory(of: absolute)) {
            sourcePath = FileSystem.absolute(name, relativeTo: directory)
        } else {
            sourcePath = absolute
        }
        evaluate(executableDirectory: executableDirectory)
        problems = problems.enumerated().sorted { a, b in
            let (lineA, lineB) = (a.element.line ?? 0, b.element.line ?? 0)
            return lineA != lineB ? lineA < lineB : a.offset < b.offset
        }.map(\.element)
    }

    private mutating func evaluate(executableDirectory: String) {
        let bytes: [UInt8]
        switch FileSystem.readFile(sourcePath) {
        case .success(let read): bytes = read
        case .failure(let failure):
            add(nil, "", "cannot read the manifest: \(failure)")
            return
        }
        if case .success(let real) = FileSystem.realPath(sourcePath) {
            for reason in PathSafety.problems(forFile: real) {
                add(nil, "", "refusing the manifest: \(reason)")
            }
        }

        let document: JSONDocument
        do {
            document = try JSONDocument(parsing: bytes, options: .init(maxDepth: 256, allowDuplicateKeys: true))
        } catch {
            add(error.line, error.path.description, "invalid JSON (column \(error.column)): \(error.message)")
            return
        }

        let reader = ManifestReader(document: document, file: sourcePath)
        problems += reader.problems

        let manifestDirectory = FileSystem.directory(of: sourcePath)
        var searchDirectories: [String] = []
        for entry in reader.pluginPaths {
            let absolute = FileSystem.absolute(entry.text, relativeTo: manifestDirectory)
            switch FileSystem.realPath(absolute) {
            case .failure(let failure):
                add(entry.line, entry.path, "directory \(JSONText.string(entry.text)) cannot be used (looked for \(absolute)): \(failure)")
            case .success(let real):
                if case .success(let status) = FileSystem.status(real), !status.isDirectory {
                    add(entry.line, entry.path, "\(JSONText.string(entry.text)) (\(real)) is not a directory")
                } else if !searchDirectories.contains(real) {
                    searchDirectories.append(real)
                }
            }
        }
        switch FileSystem.realPath(executableDirectory) {
        case .failure(let failure):
            add(nil, "", "the executable's directory \(executableDirectory) cannot be searched: \(failure)")
        case .success(let real):
            if !searchDirectories.contains(real) { searchDirectories.append(real) }
        }

        var resolver = LibraryResolver(searchDirectories: searchDirectories)
        var reportedUnsafe: Set<String> = []
        var bindings: [TargetBinding] = []
        var loadable: [LoadableTarget] = []
        for entry in reader.targets {
            var libraryPath = ""
            var libraryUsable = false
            if entry.enabled, let library = entry.library {
                let line = entry.lines["library"] ?? entry.line
                let at = entry.path.appending("library").description
                switch resolver.resolve(library) {
                case .failure(let problem):
                    add(line, at, problem.message)
                case .success(let real):
                    libraryPath = real
                    let unsafe = PathSafety.problems(forFile: real)
                    if unsafe.isEmpty {
                        libraryUsable = true
                    } else if reportedUnsafe.insert(real).inserted {
                        for reason in unsafe { add(line, at, "refusing \(real): \(reason)") }
                    }
                }
            }
            guard entry.isComplete, let name = entry.targetName, let library = entry.library, let handler = entry.handler else { continue }
            let binding = TargetBinding(
                targetName: name, library: library, libraryPath: libraryPath, handler: handler,
                config: entry.config.map { document.sourceBytes(of: $0) } ?? Array("null".utf8),
                enabled: entry.enabled, sha256: entry.sha256, isolation: entry.isolation ?? .inProcess,
                handlerTimeoutMS: entry.handlerTimeoutMS ?? reader.limits.handlerTimeoutMS,
                worker: entry.worker ?? .defaults,
                jsonPath: entry.path.description, line: entry.line)
            bindings.append(binding)
            if libraryUsable {
                loadable.append(LoadableTarget(binding: binding, lines: entry.lines))
            }
        }

        let shared = shareLibrarySettings(reader.targets, document: document, bindings: &bindings, loadable: &loadable)
        loadableLibraries = shared

        if let version = reader.version {
            manifest = Manifest(sourcePath: sourcePath, version: version, pluginPaths: searchDirectories,
                                targets: bindings, limits: reader.limits, reload: reader.reload)
        }
    }

    /// A library gets one config, one expected hash, one isolation and one
    /// worker: checks that the enabled targets binding the same library
    /// agree (the first given wins, later different ones are problems) and
    /// gives every such binding the library's values. Returns the loadable
    /// libraries.
    private mutating func shareLibrarySettings(_ entries: [ManifestReader.TargetEntry], document: JSONDocument,
                                               bindings: inout [TargetBinding], loadable: inout [LoadableTarget]) -> [LoadableLibrary] {
        struct Shared {
            var config: (value: JSONDocument.Node, source: Source)?
            var sha256: (value: String, source: Source)?
            var isolation: (value: Isolation, source: Source)?
            var worker: (value: WorkerSettings, source: Source)?
        }
        var byLibrary: [String: Shared] = [:]
        let entryByPath = Dictionary(entries.map { ($0.path.description, $0) }, uniquingKeysWith: { first, _ in first })
        for binding in bindings where binding.enabled && !binding.libraryPath.isEmpty {
            guard let entry = entryByPath[binding.jsonPath] else { continue }
            var shared = byLibrary[binding.libraryPath] ?? Shared()
            // Where `key` is given on this entry.
            func source(_ key: String) -> Source {
                Source(path: entry.path.appending(key).description, line: entry.lines[key] ?? entry.line)
            }
            let library = binding.libraryPath
            if let node = entry.config {
                share(node, at: source("config"), into: &shared.config, library: library,
                      same: { $0.isSameValue(as: $1) }, described: { _ in "the config" },
                      rule: "; a library is initialised once with one config, so give it once or give the same value")
            }
            if let hash = entry.sha256 {
                share(hash, at: source("sha256"), into: &shared.sha256, library: library, same: ==,
                      described: { _ in "the sha256" }, rule: "")
            }
            if let isolation = entry.isolation {
                share(isolation, at: source("isolation"), into: &shared.isolation, library: library, same: ==,
                      described: { "the isolation \(JSONText.string($0.rawValue))" },
                      rule: "; a library is loaded once, into the host or into one worker,"
                        + " so give it once or give the same value")
            }
            if let worker = entry.worker {
                share(worker, at: source("worker"), into: &shared.worker, library: library, same: ==,
                      described: { _ in "the worker settings" },
                      rule: "; a library runs in one worker, so give them once or give the same values")
            }
            byLibrary[binding.libraryPath] = shared
        }

        func apply(_ binding: inout TargetBinding) {
            guard binding.enabled, let shared = byLibrary[binding.libraryPath] else { return }
            if let config = shared.config { binding.config = document.sourceBytes(of: config.value) }
            if let hash = shared.sha256 { binding.sha256 = hash.value }
            if let isolation = shared.isolation { binding.isolation = isolation.value }
            if let worker = shared.worker { binding.worker = worker.value }
        }
        for index in bindings.indices { apply(&bindings[index]) }
        for index in loadable.indices { apply(&loadable[index].binding) }

        var libraries: [LoadableLibrary] = []
        for target in loadable {
            if let index = libraries.firstIndex(where: { $0.path == target.binding.libraryPath }) {
                libraries[index].targets.append(target)
            } else {
                libraries.append(LoadableLibrary(path: target.binding.libraryPath, targets: [target],
                                                 sha256Source: byLibrary[target.binding.libraryPath]?.sha256?.source))
            }
        }
        return libraries
    }

    /// Makes `value`, given at `here`, the library's when it is the first
    /// given (`first` is nil), or records a problem at `here` when it is not
    /// the same as the first: "differs from <described(first)> given for the
    /// same library <library> at <path> (line <n>)<rule>".
    private mutating func share<Value>(_ value: Value, at here: Source,
                                       into first: inout (value: Value, source: Source)?, library: String,
                                       same: (Value, Value) -> Bool, described: (Value) -> String, rule: String) {
        guard let given = first else {
            first = (value, here)
            return
        }
        if !same(given.value, value) {
            add(here.line, here.path, "differs from \(described(given.value)) given for the same library \(library)"
                    + " at \(given.source.path) (line \(given.source.line))\(rule)")
        }
    }

    private mutating func add(_ line: Int?, _ path: String, _ message: String) {
        problems.append(ManifestProblem(file: sourcePath, line: line, path: path, message: message))
    }
}
