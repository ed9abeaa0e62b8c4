import CommPluginAPI
import Synchronization

/// One initialized library, as the kit keeps it: what the descriptor's
/// `init` returns as the library pointer, handed back to open, restore, the
/// session callbacks and deinit.
final class LibraryRuntime: Sendable {
    /// The host table and configuration.
    let host: PluginHost
    /// The plugin's ``CommLibrary`` (the kit's ``DefaultLibrary`` when it gave none).
    let library: any CommLibrary
    /// The exported handler types, in descriptor order.
    let slots: [HandlerSlot]
    /// This library's version text (the descriptor's `version`).
    let version: String

    /// The sessions this library serves, by handle: made at session_start (or
    /// at a restore, which comes before session_start), dropped at
    /// session_end. Guarded by its Mutex.
    private let sessions = Mutex<[UInt: Session]>([:])
    /// Instances whose state was snapshotted and that the host has not closed:
    /// after a successful hand-off they are dropped when the library retires.
    /// Guarded by its Mutex.
    private let handedOff = Mutex<[ObjectIdentifier: InstanceBox]>([:])

    init(host: PluginHost, library: any CommLibrary, slots: [HandlerSlot], version: String) {
        self.host = host
        self.library = library
        self.slots = slots
        self.version = version
    }

    /// The runtime behind a library pointer (the host keeps the reference).
    static func borrow(_ library: UnsafeMutableRawPointer) -> LibraryRuntime {
        Unmanaged<LibraryRuntime>.fromOpaque(library).takeUnretainedValue()
    }

    /// The slot of the handler named `name`, if this library exports one.
    func slot(named name: String) -> HandlerSlot? {
        slots.first { $0.name == name }
    }

    /// ``library`` as `Library`, or a ``PluginError`` naming both types.
    func library<Library: CommLibrary>(as type: Library.Type) throws -> Library {
        guard let library = library as? Library else {
            throw PluginError(.failed, "the library's CommLibrary is a \(Swift.type(of: library)), not a \(Library.self); "
                + "pass library: \(Library.self).self to PluginExport.descriptor")
        }
        return library
    }

    // MARK: Sessions

    /// The ``Session`` for `handle`, made (taking a reference on the handle)
    /// the first time the library sees it.
    func session(for handle: OpaquePointer) throws -> Session {
        try sessions.withLock { sessions in
            if let session = sessions[Self.key(handle)] { return session }
            let session = try Session(retaining: handle, runtime: self)
            sessions[Self.key(handle)] = session
            return session
        }
    }

    /// The session of `comm`, as ``session(for:)``.
    func session(ofComm comm: OpaquePointer) throws -> Session {
        guard let handle = host.live?.session(of: comm) else {
            throw PluginError(.invalidHandle, "the host knows no session for this comm handle")
        }
        return try session(for: handle)
    }

    /// Forgets `handle`'s session (session_end); nil when it was never seen.
    func endSession(_ handle: OpaquePointer) -> Session? {
        sessions.withLock { $0.removeValue(forKey: Self.key(handle)) }
    }

    private static func key(_ handle: OpaquePointer) -> UInt {
        UInt(bitPattern: UnsafeRawPointer(handle))
    }

    // MARK: Hand-off

    func rememberHandedOff(_ box: InstanceBox) {
        handedOff.withLock { $0[ObjectIdentifier(box)] = box }
    }

    func forgetHandedOff(_ box: InstanceBox) {
        _ = handedOff.withLock { $0.removeValue(forKey: ObjectIdentifier(box)) }
    }

    // MARK: Retirement

    /// The library's deinit: drops the instances that were handed off (each
    /// sees close with cause ``CloseCause/handedOff``), the sessions' state,
    /// runs ``CommLibrary/shutdown()``, then stops all use of the host table.
    func retire() {
        do {
            var boxes = handedOff.withLock { list in
                defer { list.removeAll() }
                return Array(list.values)
            }
            for box in boxes {
                box.closeHandedOff()
            }
            let remaining = sessions.withLock { sessions in
                defer { sessions.removeAll() }
                return Array(sessions.values)
            }
            for session in remaining {
                session.end()
            }
            // Dropping the boxes here, before the host is retired, lets each
            // Comm give its reference back through a table still valid.
            boxes.removeAll()
        }
        library.shutdown()
        host.retire()
    }
}
