/// Reads a parsed manifest into typed values, recording a problem for every
/// key, type and value that is wrong and going on past it, so one run finds
/// every problem. Knows the format; knows nothing of the file system.
struct ManifestReader {
    typealias Node = JSONDocument.Node
    typealias Path = JSONDocument.Path

    /// The format version this reader understands.
    static let supportedVersion = 1

    static let rootKeys = ["version", "plugin_paths", "targets", "limits", "reload", "comment"]
    static let targetKeys = ["target_name", "library", "handler", "config", "enabled", "sha256", "isolation",
                             "handler_timeout_ms", "worker", "comment"]
    static let workerKeys = ["max_crashes", "crash_window_ms", "restart_backoff_ms", "address_space_bytes",
                             "cpu_seconds", "open_files"]
    static let limitKeys = ["max_frame_bytes", "max_depth", "max_comms_per_session", "outbound_high_water_bytes",
                            "max_outbound_bytes", "max_sessions", "handler_timeout_ms"]
    static let reloadKeys = ["watch", "debounce_ms"]

    /// One `plugin_paths` entry as written.
    struct PluginPathEntry {
        var text: String
        var path: String
        var line: Int
    }

    /// One `targets` entry; `isComplete` when every required field was
    /// present and well formed.
    struct TargetEntry {
        var targetName: String?
        var library: String?
        var handler: String?
        var config: Node?
        var enabled = true
        var sha256: String?
        /// Nil when absent or refused.
        var isolation: Isolation?
        var handlerTimeoutMS: Int?
        /// Nil when absent, refused, or not allowed (the target is not process-isolated).
        var worker: WorkerSettings?
        var path: Path
        var line: Int
        /// 1-based line of each field present, by key.
        var lines: [String: Int] = [:]
        var isComplete: Bool { targetName != nil && library != nil && handler != nil }
    }

    private(set) var problems: [ManifestProblem] = []
    private(set) var pluginPaths: [PluginPathEntry] = []
    private(set) var targets: [TargetEntry] = []
    private(set) var limits = ManifestLimits.defaults
    private(set) var reload = ReloadSettings.defaults
    private(set) var version: Int?
    private let file: String

    /// Reads `document`, the manifest at `file`.
    init(document: JSONDocument, file: String) {
        self.file = file
        read(document.root)
    }

    private mutating func read(_ root: Node) {
        let top = Path()
        guard let members = members(of: root, at: top, known: Self.rootKeys, what: "the manifest") else { return }

        if let node = members["version"] {
            if let value = integer(node, at: top.appending("version"), in: 1...Int.max) {
                if value == Self.supportedVersion {
                    version = value
                } else {
                    add(node.line, top.appending("version"), "unsupported format version \(value); this commhost reads version \(Self.supportedVersion)")
                }
            }
        } else {
            add(root.line, top.appending("version"), "missing; write \"version\": \(Self.supportedVersion) (the manifest format version)")
        }

        if let node = members["plugin_paths"] {
            readPluginPaths(node, at: top.appending("plugin_paths"))
        }

        if let node = members["targets"] {
            readTargets(node, at: top.appending("targets"))
        } else {
            add(root.line, top.appending("targets"), "missing; write \"targets\": [ ... ] (an empty list serves nothing)")
        }

        if let node = members["limits"] {
            readLimits(node, at: top.appending("limits"))
        }
        if let node = members["reload"] {
            readReload(node, at: top.appending("reload"))
        }
        if let node = members["comment"] {
            _ = string(node, at: top.appending("comment"))
        }
    }

    private mutating func readPluginPaths(_ node: Node, at path: Path) {
        guard case .array(let elements) = node.value else {
            add(node.line, path, "expected an array of directory paths, found \(node.kindName)")
            return
        }
        for (index, element) in elements.enumerated() {
            let elementPath = path.appending(index)
            guard let text = string(element, at: elementPath) else { continue }
            if text.isEmpty {
                add(element.line, elementPath, "empty path; write \".\" for the manifest's own directory")
            } else if text.utf8.contains(0) {
                add(element.line, elementPath, "path contains a NUL character")
            } else {
                pluginPaths.append(PluginPathEntry(text: text, path: elementPath.description, line: element.line))
            }
        }
    }

    private mutating func readTargets(_ node: Node, at path: Path) {
        guard case .array(let elements) = node.value else {
            add(node.line, path, "expected an array of target objects, found \(node.kindName)")
            return
        }
        var firstByName: [String: (path: Path, line: Int)] = [:]
        for (index, element) in elements.enumerated() {
            let entryPath = path.appending(index)
            var entry = TargetEntry(path: entryPath, line: element.line)
            defer { targets.append(entry) }
            guard let members = members(of: element, at: entryPath, known: Self.targetKeys, what: "a target") else { continue }
            entry.lines = members.mapValues(\.line)

            if let node = members["target_name"] {
                let namePath = entryPath.appending("target_name")
                if let name = string(node, at: namePath) {
                    if let problem = TargetName.problem(with: name) {
                        add(node.line, namePath, problem)
                    } else if let first = firstByName[name] {
                        add(node.line, namePath, "duplicate target name \(JSONText.string(name)) (first at \(first.path), line \(first.line)); each target name may appear once")
                    } else {
                        firstByName[name] = (entryPath, node.line)
                        entry.targetName = name
                    }
                }
            } else {
                add(element.line, entryPath.appending("target_name"), "missing; the comm target name clients open, e.g. \"jupyter.widget\"")
            }

            if let node = members["library"] {
                let libraryPath = entryPath.appending("library")
                if let library = string(node, at: libraryPath) {
                    if let problem = Self.libraryProblem(library) {
                        add(node.line, libraryPath, problem)
                    } else {
                        entry.library = library
                    }
                }
            } else {
                add(element.line, entryPath.appending("library"), "missing; the library file name, e.g. \"libEchoPlugin.so\"")
            }

            if let node = members["handler"] {
                let handlerPath = entryPath.appending("handler")
                if let handler = string(node, at: handlerPath) {
                    if let problem = Self.handlerProblem(handler) {
                        add(node.line, handlerPath, problem)
                    } else {
                        entry.handler = handler
                    }
                }
            } else {
                add(element.line, entryPath.appending("handler"), "missing; the name of the handler the library exports, e.g. \"echo\"")
            }

            if let node = members["config"] {
                reportDuplicateKeys(in: node, at: entryPath.appending("config"))
                entry.config = node
            }
            if let node = members["enabled"], let enabled = bool(node, at: entryPath.appending("enabled")) {
                entry.enabled = enabled
            }
            if let node = members["sha256"] {
                let hashPath = entryPath.appending("sha256")
                if let text = string(node, at: hashPath) {
                    let isHex = text.utf8.allSatisfy { byte in
                        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
                            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
                    }
                    if text.utf8.count == 64 && isHex {
                        entry.sha256 = text.lowercased()
                    } else {
                        add(node.line, hashPath, "expected 64 hexadecimal digits (as printed by sha256sum), found \(JSONText.string(text))")
                    }
                }
            }
            if let node = members["isolation"] {
                let isolationPath = entryPath.appending("isolation")
                if let text = string(node, at: isolationPath) {
                    if let isolation = Isolation(rawValue: text) {
                        entry.isolation = isolation
                    } else {
                        let known = Isolation.allCases.map(\.rawValue)
                        var message = "expected " + known.map(JSONText.string).joined(separator: " or ")
                            + ", found \(JSONText.string(text))"
                        if let suggestion = KeySuggestion.closest(to: text, among: known) {
                            message += "; did you mean \(JSONText.string(suggestion))?"
                        }
                        add(node.line, isolationPath, message)
                    }
                }
            }
            if let node = members["handler_timeout_ms"],
               let value = integer(node, at: entryPath.appending("handler_timeout_ms"), in: 1...Int.max) {
                entry.handlerTimeoutMS = value
            }
            if let node = members["worker"] {
                let workerPath = entryPath.appending("worker")
                let worker = readWorker(node, at: workerPath)
                if entry.isolation == .process {
                    entry.worker = worker
                } else if entry.isolation == .inProcess || members["isolation"] == nil {
                    // Not for a refused isolation: it has its problem, and
                    // whether a worker is allowed depends on what was meant.
                    let shown = members["isolation"] == nil ? "\"in-process\" (the default)" : "\"in-process\""
                    add(node.line, workerPath, "a worker is only allowed with \"isolation\": \"process\","
                            + " and this target's isolation is \(shown);"
                            + " add \"isolation\": \"process\" to this target or remove \"worker\"")
                }
            }
            if let node = members["comment"] {
                _ = string(node, at: entryPath.appending("comment"))
            }
        }
    }

    /// The settings of a `worker` object, with defaults for absent members;
    /// nil (with problems) when it is not an object or a value is refused.
    private mutating func readWorker(_ node: Node, at path: Path) -> WorkerSettings? {
        guard let members = members(of: node, at: path, known: Self.workerKeys, what: "worker") else { return nil }
        var refused = false
        // The value of `key` when present and accepted; nil otherwise.
        func read(_ key: String, in range: ClosedRange<Int> = 1...Int.max, into reader: inout ManifestReader) -> Int? {
            guard let node = members[key] else { return nil }
            guard let value = reader.integer(node, at: path.appending(key), in: range) else {
                refused = true
                return nil
            }
            return value
        }
        var worker = WorkerSettings.defaults
        worker.maxCrashes = read("max_crashes", into: &self) ?? worker.maxCrashes
        worker.crashWindowMS = read("crash_window_ms", into: &self) ?? worker.crashWindowMS
        worker.restartBackoffMS = read("restart_backoff_ms", in: WorkerSettings.restartBackoffRange, into: &self)
            ?? worker.restartBackoffMS
        worker.addressSpaceBytes = read("address_space_bytes", into: &self)
        worker.cpuSeconds = read("cpu_seconds", into: &self)
        worker.openFiles = read("open_files", into: &self)
        return refused ? nil : worker
    }

    private mutating func readLimits(_ node: Node, at path: Path) {
        guard let members = members(of: node, at: path, known: Self.limitKeys, what: "limits") else { return }
        // Reads `key` into `field`; false when the key is present and its value refused.
        func read(_ key: String, _ field: WritableKeyPath<ManifestLimits, Int>,
                  into reader: inout ManifestReader) -> Bool {
            guard let node = members[key] else { return true }
            guard let value = reader.integer(node, at: path.appending(key), in: 1...Int.max) else { return false }
            reader.limits[keyPath: field] = value
            return true
        }
        let frameRead = read("max_frame_bytes", \.maxFrameBytes, into: &self)
        _ = read("max_depth", \.maxDepth, into: &self)
        _ = read("max_comms_per_session", \.maxCommsPerSession, into: &self)
        let highWaterRead = read("outbound_high_water_bytes", \.outboundHighWaterBytes, into: &self)
        limits.maxOutboundBytes = ManifestLimits.minimumOutboundBytes(
            maxFrameBytes: limits.maxFrameBytes, outboundHighWaterBytes: limits.outboundHighWaterBytes)
        let boundRead = read("max_outbound_bytes", \.maxOutboundBytes, into: &self)
        _ = read("max_sessions", \.maxSessions, into: &self)
        _ = read("handler_timeout_ms", \.handlerTimeoutMS, into: &self)
        // A value that was refused already has its problem; comparing with
        // the default in its place would only add a misleading second one.
        if frameRead && highWaterRead && boundRead {
            checkOutboundBounds(members, at: path)
        }
    }

    /// Records a problem when `max_outbound_bytes` cannot admit a reply on
    /// top of the high-water mark, and when `outbound_high_water_bytes` is
    /// not below the bound.
    private mutating func checkOutboundBounds(_ members: [String: Node], at path: Path) {
        let frame = limits.maxFrameBytes, mark = limits.outboundHighWaterBytes, bound = limits.maxOutboundBytes
        let envelope = ManifestLimits.outboundEnvelopeBytes
        let minimum = ManifestLimits.minimumOutboundBytes(maxFrameBytes: frame, outboundHighWaterBytes: mark)
        if let node = members["max_outbound_bytes"], bound < minimum {
            add(node.line, path.appending("max_outbound_bytes"),
                "\(bound) is below the minimum of \(minimum) these limits need"
                    + " (outbound_high_water_bytes + 2 * max_frame_bytes + \(envelope)"
                    + " = \(mark) + 2 * \(frame) + \(envelope)):"
                    + " the bound must admit the reply to any accepted frame on top of the high-water mark,"
                    + " and the shinywidgets dialect can double a frame's size;"
                    + " raise it to at least \(minimum), or lower max_frame_bytes or outbound_high_water_bytes")
        }
        if let node = members["outbound_high_water_bytes"], mark >= bound {
            let given = members["max_outbound_bytes"] == nil ? "the derived max_outbound_bytes" : "max_outbound_bytes"
            add(node.line, path.appending("outbound_high_water_bytes"),
                "\(mark) is not below \(given) (\(bound)): plugins' sends must be told to wait (COMMHOST_EAGAIN)"
                    + " before the queue reaches the bound that ends the session;"
                    + " lower outbound_high_water_bytes or raise max_outbound_bytes")
        }
    }

    private mutating func readReload(_ node: Node, at path: Path) {
        guard let members = members(of: node, at: path, known: Self.reloadKeys, what: "reload") else { return }
        if let node = members["watch"], let watch = bool(node, at: path.appending("watch")) {
            reload.watch = watch
        }
        if let node = members["debounce_ms"], let value = integer(node, at: path.appending("debounce_ms"), in: ReloadSettings.debounceRange) {
            reload.debounceMS = value
        }
    }

    // MARK: value rules

    /// Nil when `library` is a usable library reference: a file name, or a
    /// path (relative to each plugin path, or absolute) that names a file.
    static func libraryProblem(_ library: String) -> String? {
        if library.isEmpty { return "empty library name" }
        if library.utf8.contains(0) { return "library name contains a NUL character" }
        if library.hasSuffix("/") { return "\(JSONText.string(library)) names a directory; give the library file, e.g. \"libFoo.so\"" }
        let last = library.split(separator: "/").last.map(String.init) ?? library
        if last == "." || last == ".." { return "\(JSONText.string(library)) names a directory; give the library file, e.g. \"libFoo.so\"" }
        return nil
    }

    /// Nil when `handler` can be a handler name: 1 to 128 bytes, no control characters.
    static func handlerProblem(_ handler: String) -> String? {
        if handler.isEmpty { return "empty handler name" }
        if handler.utf8.count > 128 { return "handler name is \(handler.utf8.count) bytes long; at most 128 are allowed" }
        if handler.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "handler name \(JSONText.string(handler)) contains a control character"
        }
        return nil
    }

    // MARK: helpers

    /// The members of the object `node` by name (first occurrence), after
    /// recording a problem for every duplicate and unknown key; nil (with a
    /// problem) when `node` is not an object.
    private mutating func members(of node: Node, at path: Path, known: [String], what: String) -> [String: Node]? {
        guard case .object(let list) = node.value else {
            add(node.line, path, "expected \(what) as an object, found \(node.kindName)")
            return nil
        }
        var result: [String: Node] = [:]
        var firstLine: [[UInt8]: Int] = [:]
        for member in list {
            let memberPath = path.appending(member.key)
            let keyBytes = Array(member.key.utf8)
            if let line = firstLine[keyBytes] {
                add(member.keyLine, memberPath, "duplicate key \(JSONText.string(member.key)) (first at line \(line)); remove one")
                continue
            }
            firstLine[keyBytes] = member.keyLine
            guard known.contains(where: { $0.utf8.elementsEqual(keyBytes) }) else {
                var message = "unknown key \(JSONText.string(member.key))"
                if let suggestion = KeySuggestion.closest(to: member.key, among: known) {
                    message += "; did you mean \(JSONText.string(suggestion))?"
                } else {
                    message += " (known keys: \(known.joined(separator: ", ")))"
                }
                add(member.keyLine, memberPath, message)
                continue
            }
            result[member.key] = member.value
        }
        return result
    }

    /// Records a problem for each duplicate key anywhere inside `node`.
    private mutating func reportDuplicateKeys(in node: Node, at path: Path) {
        switch node.value {
        case .array(let elements):
            for (index, element) in elements.enumerated() {
                reportDuplicateKeys(in: element, at: path.appending(index))
            }
        case .object(let list):
            var firstLine: [[UInt8]: Int] = [:]
            for member in list {
                let keyBytes = Array(member.key.utf8)
                if let line = firstLine[keyBytes] {
                    add(member.keyLine, path.appending(member.key), "duplicate key \(JSONText.string(member.key)) (first at line \(line)); remove one")
                } else {
                    firstLine[keyBytes] = member.keyLine
                }
                reportDuplicateKeys(in: member.value, at: path.appending(member.key))
            }
        default:
            break
        }
    }

    private mutating func string(_ node: Node, at path: Path) -> String? {
        guard case .string(let text) = node.value else {
            add(node.line, path, "expected a string, found \(node.kindName)")
            return nil
        }
        return text
    }

    private mutating func bool(_ node: Node, at path: Path) -> Bool? {
        guard case .bool(let value) = node.value else {
            add(node.line, path, "expected true or false, found \(node.kindName)")
            return nil
        }
        return value
    }

    private mutating func integer(_ node: Node, at path: Path, in range: ClosedRange<Int>) -> Int? {
        guard case .number(let text) = node.value else {
            add(node.line, path, "expected an integer, found \(node.kindName)")
            return nil
        }
        let rangeText = range.upperBound == Int.max ? "a positive integer" : "an integer from \(range.lowerBound) to \(range.upperBound)"
        guard let value = node.intValue else {
            let isInteger = !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
            add(node.line, path, isInteger ? "\(text) is too large; expected \(rangeText)" : "expected \(rangeText) written without fraction or exponent, found \(text)")
            return nil
        }
        guard range.contains(value) else {
            add(node.line, path, "expected \(rangeText), found \(text)")
            return nil
        }
        return value
    }

    private mutating func add(_ line: Int?, _ path: Path, _ message: String) {
        problems.append(ManifestProblem(file: file, line: line, path: path.description, message: message))
    }
}
