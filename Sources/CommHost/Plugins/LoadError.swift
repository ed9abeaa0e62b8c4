/// Why a library was refused. `description` is the one-line reason, naming the file.
public struct LoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for callers that act on the kind of failure.
    public enum Kind: Sendable, Equatable {
        /// The file could not be read or staged.
        case unreadable
        /// Not an ELF shared object for this machine.
        case notSharedObject
        /// The staged copy's SHA-256 differs from the one the manifest gives.
        case hashMismatch
        /// `dlopen` refused it (missing dependency, bad relocation, …).
        case dlopenFailed
        /// No `commhost_plugin_entry` function.
        case noEntry
        /// The descriptor is missing, too small, or of an incompatible ABI version.
        case badDescriptor
        /// A handler entry is unusable (no name, duplicate name, no open callback).
        case badHandler
        /// The library's init returned an error.
        case initFailed
        /// The private staging directory could not be made.
        case staging
    }

    /// What went wrong.
    public var kind: Kind
    /// The library file (as given, before staging).
    public var path: String
    /// One line saying what was wrong and, where it helps, what to do.
    public var reason: String

    /// Creates an error for `path`.
    public init(_ kind: Kind, path: String, reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
