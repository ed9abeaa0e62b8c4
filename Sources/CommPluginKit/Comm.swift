import CommPluginAPI

/// One comm, as a handler sees it: send messages on it, close it, read its
/// id and target name.
///
/// A `Comm` holds its own reference to the host's comm handle
/// (`retain_comm` when the kit makes it, `release_comm` when the last
/// reference to it goes), so it stays safe to use from any thread and for as
/// long as you keep it: once the comm has closed, ``send(_:)`` and
/// ``close(_:)`` throw ``PluginError`` with ``PluginStatus/closed`` instead
/// of failing worse. Sends leave in the order they were issued.
public final class Comm: @unchecked Sendable {
    // @unchecked: `handle` is immutable and kept valid by the reference this
    // object holds; the host functions called with it are [any-thread].

    /// The host this comm's library was loaded by.
    public let host: PluginHost
    let handle: OpaquePointer

    /// Wraps `handle` and takes a reference on it.
    init(retaining handle: OpaquePointer, host: PluginHost) {
        self.handle = handle
        self.host = host
        host.retain(handle)
    }

    deinit {
        host.release(handle)
    }

    /// The comm's id (`comm_id`), "" once the library is retired.
    public var id: String {
        guard !host.isRetired, let commID = host.api.pointee.comm_id else { return "" }
        return String(commhost: commID(handle))
    }

    /// The comm's `target_name`, "" once the library is retired.
    public var targetName: String {
        guard !host.isRetired, let targetName = host.api.pointee.target_name else { return "" }
        return String(commhost: targetName(handle))
    }

    /// Sends a comm_msg with `message` to the client. Throws ``PluginError``
    /// with the host's status: ``PluginStatus/closed`` once the comm has
    /// closed, ``PluginStatus/invalidJSON`` when data or metadata is not a
    /// JSON object, ``PluginStatus/limitExceeded`` when it is too large.
    public func send(_ message: CommMessage) throws {
        try call("send", message) { host.api.pointee.send }
    }

    /// Sends a comm_msg whose data is `value` encoded as JSON (sorted keys;
    /// it must encode as an object), with `buffers`. Throws as ``send(_:)``.
    public func send(json value: some Encodable, buffers: [[UInt8]] = []) throws {
        try send(CommMessage(json: value, buffers: buffers))
    }

    /// Closes the comm: sends comm_close with `message` (empty data means
    /// `{}`); the handler's ``CommHandler/close(cause:message:)`` then runs
    /// with ``CloseCause/plugin`` (right after the current callback when
    /// called from one). Throws ``PluginError`` with
    /// ``PluginStatus/closed`` when the comm was already closed.
    public func close(_ message: CommMessage = CommMessage()) throws {
        try call("close", message) { host.api.pointee.close }
    }

    /// Closes the comm with data `value` encoded as JSON. Throws as ``close(_:)``.
    public func close(json value: some Encodable) throws {
        try close(CommMessage(json: value))
    }

    private typealias HostSend = @convention(c) (OpaquePointer?, UnsafePointer<commhost_message>?) -> commhost_status

    private func call(_ what: String, _ message: CommMessage, function: () -> HostSend?) throws {
        guard !host.isRetired else {
            throw PluginError(.closed, "\(what) on a comm after its library was retired; stop sending when the handler closes")
        }
        guard let function = function() else {
            throw PluginError(.unsupported, "the host offers no \(what) function")
        }
        let status = PluginStatus(rawValue: message.withBorrowed { function(handle, $0) })
        guard status == .ok else {
            throw PluginError(status, "\(what) on comm \"\(id)\" (target \"\(targetName)\") failed: \(Self.explain(status))")
        }
    }

    private static func explain(_ status: PluginStatus) -> String {
        switch status {
        case .closed: "the comm is closed or its session has ended (\(status))"
        case .invalidJSON: "data and metadata must each be a JSON object or empty (\(status))"
        case .limitExceeded: "the message exceeds a host limit (\(status))"
        case .invalidArgument: "the host refused the arguments (\(status))"
        default: "\(status)"
        }
    }
}
