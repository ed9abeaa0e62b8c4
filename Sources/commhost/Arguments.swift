import CommHost

/// A small strict command-line parser: `--name value`, `--name=value`,
/// boolean `--flag`, and positionals. Anything not declared is a usage error.
struct Arguments {
    /// What a command accepts.
    struct Spec {
        var options: Set<String> = []
        var flags: Set<String> = []
        var maxPositionals = 0
    }

    /// A usage error: what was wrong, for one line on stderr.
    struct UsageError: Error {
        var message: String
    }

    private(set) var values: [String: String] = [:]
    private(set) var setFlags: Set<String> = []
    private(set) var positionals: [String] = []

    /// Parses `arguments` against `spec`.
    init(_ arguments: [String], spec: Spec) throws(UsageError) {
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if argument == "--" {
                positionals.append(contentsOf: rest)
                break
            }
            guard argument.hasPrefix("--") else {
                positionals.append(argument)
                continue
            }
            var name = String(argument.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if spec.flags.contains(name) {
                guard inline == nil else { throw UsageError(message: "--\(name) takes no value") }
                setFlags.insert(name)
            } else if spec.options.contains(name) {
                guard let value = inline ?? rest.popFirst() else {
                    throw UsageError(message: "--\(name) needs a value")
                }
                values[name] = value
            } else {
                let known = spec.options.union(spec.flags).sorted()
                let hint = KeySuggestion.closest(to: name, among: known).map { "; did you mean --\($0)?" } ?? ""
                throw UsageError(message: "unknown option --\(name)\(hint)")
            }
        }
        if positionals.count > spec.maxPositionals {
            throw UsageError(message: "unexpected argument \"\(positionals[spec.maxPositionals])\"")
        }
    }

    /// The value of `--name`, if given.
    func value(_ name: String) -> String? { values[name] }

    /// Whether `--name` was given.
    func flag(_ name: String) -> Bool { setFlags.contains(name) }
}
