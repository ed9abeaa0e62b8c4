import CommPluginAPI
import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The host that loaded this library: its function table, the library's
/// configuration from the manifest, and the host log. One exists per
/// library `init`; every ``Comm`` reaches it as ``Comm/host``.
///
/// Safe to use from any thread. Once the host retires the library (its
/// `deinit`), every call through it becomes a no-op or throws
/// ``PluginStatus/closed``: stop your own threads in
/// ``CommHandler/close(cause:message:)`` so none is mid-call then.
public final class PluginHost: @unchecked Sendable {
    // @unchecked: `api` is an immutable pointer to the host's table, whose
    // functions the header tags [any-thread] (set_error [callback-thread] is
    // only called from callbacks); the table is valid until deinit returns,
    // and `retired` (atomic) stops the kit calling through it after that.
    // `handedOff` is guarded by its Mutex. Everything else is immutable.

    /// The configuration JSON text the manifest gives this library (`null`
    /// when it gives none).
    public let configuration: [UInt8]
    /// The host's ABI version.
    public let abiVersion: (major: Int, minor: Int)

    let api: UnsafePointer<commhost_host_api>
    let slots: [HandlerSlot]
    private let retired = Atomic<Bool>(false)
    /// Instances whose state was snapshotted and that the host has not closed:
    /// after a successful hand-off they are dropped when the library retires.
    private let handedOff = Mutex<[ObjectIdentifier: InstanceBox]>([:])

    init(api: UnsafePointer<commhost_host_api>, configuration: [UInt8], slots: [HandlerSlot]) {
        self.api = api
        self.configuration = configuration
        self.slots = slots
        self.abiVersion = (Int(api.pointee.abi_major), Int(api.pointee.abi_minor))
    }

    /// Decodes ``configuration`` as a `T`. Throws ``PluginError``
    /// (``PluginStatus/invalidArgument``) saying where and why it does not fit.
    public func decodeConfiguration<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONCoding.decode(T.self, from: configuration, what: "the library configuration",
                              status: .invalidArgument)
    }

    /// Writes one line to the host's log under this library's name.
    public func log(_ level: LogLevel, _ message: String) {
        guard !isRetired, let log = api.pointee.log else { return }
        message.withCommhostStr { log(level.cValue, $0) }
    }

    // MARK: Kit internals

    var isRetired: Bool { retired.load(ordering: .acquiring) }

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
        guard let setError = api.pointee.set_error else { return }
        text.withCommhostStr { setError($0) }
    }

    func retain(_ comm: OpaquePointer) {
        guard !isRetired else { return }
        api.pointee.retain_comm?(comm)
    }

    func release(_ comm: OpaquePointer) {
        guard !isRetired else { return }
        api.pointee.release_comm?(comm)
    }

    func rememberHandedOff(_ box: InstanceBox) {
        handedOff.withLock { $0[ObjectIdentifier(box)] = box }
    }

    func forgetHandedOff(_ box: InstanceBox) {
        _ = handedOff.withLock { $0.removeValue(forKey: ObjectIdentifier(box)) }
    }

    /// The library's deinit: drops the instances that were handed off (each
    /// sees close with cause `.handedOff`, and gives back its comm reference
    /// while the table is still valid), then stops all use of the table.
    func retire() {
        do {
            var boxes = handedOff.withLock { list in
                let boxes = Array(list.values)
                list.removeAll()
                return boxes
            }
            for box in boxes {
                box.handler.close(cause: .handedOff, message: CommMessage())
                // The host never closes a handed-off instance, so its
                // reference from open is given back here instead.
                box.releaseHostReference()
            }
            // Dropping the boxes here, before `retired` is set, lets each
            // Comm give its reference back through a table still valid.
            boxes.removeAll()
        }
        retired.store(true, ordering: .releasing)
    }
}
