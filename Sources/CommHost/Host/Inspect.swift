/// `commhost inspect`: load one library through the real loader in a
/// throwaway staging area and describe it.
public enum Inspect {
    /// Loads `path` and returns what to print and the exit code: 0 and the
    /// library's name, version, ABI version and handlers for a valid plugin;
    /// 1 and the loader's one-line reason otherwise. A library serve and
    /// check would refuse before loading it (the path safety rule,
    /// docs/MANIFEST.md) is refused here too, with the same reasons, so
    /// inspect and check agree on what would be loaded.
    public static func run(path: String, json: Bool) -> (output: String, exitCode: Int32) {
        if let refusal = unsafePathRefusal(path, json: json) { return (refusal, 1) }
        let staging: StagingArea
        do {
            staging = try StagingArea()
        } catch {
            return (render(error: error, json: json), 1)
        }
        defer { staging.removeAll() }
        let library: PluginLibrary
        do {
            library = try PluginLibrary.load(path: path, staging: staging)
        } catch {
            return (render(error: error, json: json), 1)
        }
        defer { library.retire() }
        if json {
            var out = "{\"ok\":true,\"path\":\(JSONText.string(path)),\"name\":\(JSONText.string(library.name))"
            out += ",\"version\":\(JSONText.string(library.version)),\"abi\":\(JSONText.string("\(library.abiMajor).\(library.abiMinor)"))"
            out += ",\"sha256\":\"\(library.sha256)\",\"swift_runtime\":\(library.containsSwift),\"concurrent\":\(library.concurrent)"
            out += ",\"handlers\":[" + library.handlers.map { handler in
                "{\"name\":\(JSONText.string(handler.name)),\"hand_off\":\(handler.supportsHandOff)}"
            }.joined(separator: ",") + "]}"
            return (out, 0)
        }
        var lines = [
            "path:     \(path)",
            "name:     \(library.name)",
            "version:  \(library.version)",
            "abi:      \(library.abiMajor).\(library.abiMinor)",
            "sha256:   \(library.sha256)",
            "unload:   \(library.containsSwift ? "never (registered with the Swift runtime)" : "on retire (no Swift code)")",
            "calls:    \(library.concurrent ? "concurrent" : "serialized")",
            "handlers:",
        ]
        for handler in library.handlers {
            lines.append("  \(handler.name)" + (handler.supportsHandOff ? " (hand-off on reload)" : ""))
        }
        return (lines.joined(separator: "\n"), 0)
    }

    /// What to print when serve and check would refuse `path` before
    /// loading it (the path safety rule), or nil when they would not.
    static func unsafePathRefusal(_ path: String, json: Bool) -> String? {
        guard case .success(let real) = FileSystem.realPath(path) else { return nil }
        let unsafe = PathSafety.problems(forFile: real)
        guard !unsafe.isEmpty else { return nil }
        let reasons = unsafe.map { "refusing \(real): \($0)" }
        return json
            ? "{\"ok\":false,\"path\":\(JSONText.string(path)),\"error\":\(JSONText.string(reasons.joined(separator: "; ")))}"
            : reasons.map { "\(path): \($0)" }.joined(separator: "\n")
    }

    private static func render(error: LoadError, json: Bool) -> String {
        json ? "{\"ok\":false,\"path\":\(JSONText.string(error.path)),\"error\":\(JSONText.string(error.description))}" : error.description
    }
}
