/// What the host holds as a comm's instance pointer: the handler instance,
/// its comm and its library, retained from open (or restore) until close.
final class InstanceBox: @unchecked Sendable {
    // @unchecked: `comm` and `handler` are set once, before the box's pointer
    // is given to the host (open, restore) or, for a comm the plugin opened,
    // right after host open returns and still on the session's serialized
    // context, so before any callback for the comm can run. From then on only
    // this comm's callbacks and tasks touch `handler` and `snapshotted`, all
    // on that context (the library's retire runs after all of them);
    // `slot` and `runtime` are immutable and Sendable.

    let slot: HandlerSlot
    let runtime: LibraryRuntime
    private(set) var comm: Comm?
    /// Nil only for a comm the plugin opened whose instance could not be made.
    var handler: (any CommHandler)?
    /// Set when a snapshot succeeded, so close knows to take it off the
    /// library's hand-off list.
    var snapshotted = false

    init(slot: HandlerSlot, runtime: LibraryRuntime) {
        self.slot = slot
        self.runtime = runtime
    }

    /// Ties the box and `comm` together (the comm finds its instance for tasks).
    func attach(_ comm: Comm) {
        self.comm = comm
        comm.serve(from: self)
    }

    /// The handle of the session whose serialized context runs this comm.
    var sessionHandle: OpaquePointer? { comm?.session.handle }

    /// The library dropping an instance it handed off: it sees close with
    /// ``CloseCause/handedOff``, and the host's reference is given back (the
    /// host never closes a handed-off instance).
    func closeHandedOff() {
        SerializedContext.run(on: sessionHandle) {
            handler?.close(cause: .handedOff, message: CommMessage())
        }
        releaseHostReference()
    }

    /// A +1 pointer for `*out_instance`; balanced by ``take(_:)`` in close, or
    /// by ``releaseHostReference()``.
    func retainedPointer() -> UnsafeMutableRawPointer {
        Unmanaged.passRetained(self).toOpaque()
    }

    /// Gives back the reference ``retainedPointer()`` made, for an instance
    /// the host will never close.
    func releaseHostReference() {
        Unmanaged.passUnretained(self).release()
    }

    /// The box behind an instance pointer, leaving the host's reference in place.
    static func borrow(_ pointer: UnsafeMutableRawPointer) -> InstanceBox {
        Unmanaged<InstanceBox>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// The box behind an instance pointer, taking over the host's reference.
    static func take(_ pointer: UnsafeMutableRawPointer) -> InstanceBox {
        Unmanaged<InstanceBox>.fromOpaque(pointer).takeRetainedValue()
    }
}
