/// One thing wrong with a manifest, located so an admin can fix it: the
/// file, the 1-based line (when the problem is at a place in the text), the
/// JSON path of the value (`targets[2].library`, empty for the file as a
/// whole) and what is wrong.
public struct ManifestProblem: Sendable, Equatable, CustomStringConvertible {
    /// The manifest file (absolute path).
    public var file: String
    /// 1-based line, or nil when the problem is not at a place in the text
    /// (the file cannot be read, its permissions are unsafe).
    public var line: Int?
    /// JSON path of the value, e.g. `targets[2].library`; empty for the whole file.
    public var path: String
    /// What is wrong and, where it helps, what to do.
    public var message: String

    /// Creates a problem.
    public init(file: String, line: Int?, path: String, message: String) {
        self.file = file
        self.line = line
        self.path = path
        self.message = message
    }

    /// `<file>:<line>: <path>: <message>`; the line and path parts are left
    /// out when absent.
    public var description: String {
        var out = file
        if let line { out += ":\(line)" }
        if !path.isEmpty { out += ": " + path }
        return out + ": " + message
    }
}
