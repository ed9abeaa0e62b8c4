import CommPluginAPI
import Synchronization

/// The host that loaded this library: the library's configuration from the
/// manifest, the host's ABI version and the host log. One exists per library
/// `init`; the ``CommLibrary`` gets it in ``CommLibrary/init(host:)``, and
/// every ``Comm`` and ``Session`` reaches it as `host`.
///
/// Safe to use from any thread. Once the host retires the library (its
/// `deinit`), every call through it becomes a no-op or throws
/// ``PluginStatus/closed``: stop your own threads in
/// ``CommLibrary/shutdown()`` so none is mid-call then.
public final class PluginHost: Sendable {
    /// The configuration JSON text the manifest gives this library (`null`
    /// when it gives none).
    public let configuration: [UInt8]
    /// The host's ABI version.
    public let abiVersion: (major: Int, minor: Int)

    private let table: HostTable
    /// Set by ``retire()``: the table is not valid past the library's deinit.
    private let retired = Atomic<Bool>(false)

    init(table: HostTable, configuration: [UInt8]) {
        self.table = table
        self.configuration = configuration
        self.abiVersion = (Int(table.table.pointee.abi_major), Int(table.table.pointee.abi_minor))
    }

    /// Decodes ``configuration`` as a `T`. Throws ``PluginError``
    /// (``PluginStatus/invalidArgument``) saying where and why it does not fit.
    public func decodeConfiguration<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONCoding.decode(T.self, from: configuration, what: "the library configuration",
                              status: .invalidArgument)
    }

    /// Writes one line to the host's log under this library's name.
    public func log(_ level: LogLevel, _ message: String) {
        live?.log(level.cValue, message)
    }

    // MARK: Kit internals

    /// The host's table, or nil once the library is retired.
    var live: HostTable? {
        retired.load(ordering: .acquiring) ? nil : table
    }

    /// The table, or a ``PluginError`` saying that `what` came after the library was retired.
    func liveTable(for what: String) throws -> HostTable {
        guard let live else {
            throw PluginError(.closed, "\(what) after the library was retired; stop your threads in shutdown()")
        }
        return live
    }

    /// Hands `error` to the host as the running callback's error text and
    /// returns the status the callback should return (never `COMMHOST_OK`).
    func fail(_ error: any Error) -> commhost_status {
        let status: PluginStatus
        let text: String
        if let error = error as? PluginError {
            status = error.status.rawValue < 0 ? error.status : .failed
            text = error.message
        } else {
            status = .failed
            text = JSONCoding.describe(error)
        }
        setError(text)
        return status.rawValue
    }

    /// Records `text` as the running callback's error text.
    func setError(_ text: String) {
        live?.setError(text)
    }

    /// Stops every call through the table: the library's deinit is returning.
    func retire() {
        retired.store(true, ordering: .releasing)
    }
}
