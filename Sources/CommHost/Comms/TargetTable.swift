/// The target_name -> handler bindings every session looks up on comm_open.
/// Built from the manifest; replaced whole on a manifest reload. Client
/// input only ever looks names up here: it can never cause a load.
public final class TargetTable: Sendable {
    /// Guards the bindings: every session reads them on comm_open, a reload replaces them.
    private let bindings: Locked<[String: Handler]>
    /// Guards the targets that are listed but not served now (their worker
    /// crashed and is restarting, or crashed too often), with the reason a
    /// client's comm_open for them is closed with.
    private let unavailable = Locked<[String: String]>([:])

    /// A table with `bindings`.
    public init(_ bindings: [String: Handler] = [:]) {
        self.bindings = Locked(bindings)
    }

    /// The handler bound to `targetName`, if any.
    public func handler(for targetName: String) -> Handler? {
        bindings.withLock { $0[targetName] }
    }

    /// The libraries the bindings use, each once, in a stable order (by path):
    /// the libraries that serve every session.
    public var libraries: [PluginLibrary] {
        Self.libraries(of: all)
    }

    /// The libraries of `bindings`, each once, ordered by path.
    static func libraries(of bindings: [String: Handler]) -> [PluginLibrary] {
        var seen = Set<ObjectIdentifier>()
        return bindings.values.map(\.library).filter { seen.insert(ObjectIdentifier($0)).inserted }.sorted { $0.path < $1.path }
    }

    /// Why `targetName` is not served now, when it is listed but unavailable.
    public func unavailableReason(for targetName: String) -> String? {
        unavailable.withLock { $0[targetName] }
    }

    /// Marks targets unavailable (with their reasons) or available again (nil).
    public func setUnavailable(_ reasons: [String: String?]) {
        unavailable.withLock { table in
            for (target, reason) in reasons { table[target] = reason }
        }
    }

    /// Makes every target available again (a manifest reload decides anew).
    public func clearUnavailable() {
        unavailable.withLock { $0.removeAll() }
    }

    /// Every binding, for stats and reload.
    public var all: [String: Handler] { bindings.withLock { $0 } }

    /// Replaces every binding at once.
    public func replace(with new: [String: Handler]) {
        bindings.withLock { $0 = new }
    }
}
