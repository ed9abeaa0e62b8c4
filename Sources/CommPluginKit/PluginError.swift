/// An error that fails the current callback with a chosen status and message.
///
/// Throw it from a ``CommHandler`` to pick the `commhost_status` the host
/// sees; any other thrown error becomes ``PluginStatus/failed`` with the
/// error's description as its text. The kit also throws it when a host
/// function refuses a call (``Comm/send(_:)`` on a closed comm gives
/// ``PluginStatus/closed``) and when a message cannot be decoded.
public struct PluginError: Error, Sendable, CustomStringConvertible {
    /// The status the callback returns. A non-negative value is reported as
    /// ``PluginStatus/failed``, since a thrown error always fails the call.
    public var status: PluginStatus
    /// What went wrong and, where possible, what to do about it; handed to
    /// the host as the callback's error text.
    public var message: String

    /// An error with `status` and a `message` a person can act on.
    public init(_ status: PluginStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
