/// What the host holds as a comm's instance pointer: the handler and the
/// host it belongs to, retained from open (or restore) until close.
final class InstanceBox: @unchecked Sendable {
    // @unchecked: the host serializes every callback for one comm, and only
    // callbacks touch `handler` and `snapshotted` (retire runs after all of
    // them); `host` is immutable and Sendable.

    let handler: any CommHandler
    let host: PluginHost
    /// Set when a snapshot succeeded, so close knows to take it off the
    /// host's hand-off list.
    var snapshotted = false

    init(handler: any CommHandler, host: PluginHost) {
        self.handler = handler
        self.host = host
    }

    /// A +1 pointer for `*out_instance`; balanced by ``take(_:)`` in close, or
    /// by ``releaseHostReference()`` when a handed-off instance is dropped.
    func retainedPointer() -> UnsafeMutableRawPointer {
        Unmanaged.passRetained(self).toOpaque()
    }

    /// Gives back the reference ``retainedPointer()`` made, for an instance
    /// the host will never close (it was handed off).
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
