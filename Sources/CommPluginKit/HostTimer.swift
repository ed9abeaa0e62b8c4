import CommPluginAPI

/// A timer the host runs on a comm's or a session's serialized context,
/// started with ``Comm/startTimer(after:every:_:)`` or
/// ``Session/startTimer(after:every:_:)``.
///
/// Keeping the object is only needed to cancel the timer: it runs until it
/// is cancelled, its one shot has run, or its comm closes or session ends.
/// (Not named `Timer`, so that plugins importing Foundation can name it.)
public final class HostTimer: Sendable {
    /// The host's timer handle (`commhost_timer`).
    let id: commhost_timer
    let host: PluginHost

    init(id: commhost_timer, host: PluginHost) {
        self.id = id
        self.host = host
    }

    /// Stops the timer: its task will not run again. From any thread. Returns
    /// false when the timer had already ended (its one shot ran, it was
    /// cancelled, or its comm closed or session ended).
    @discardableResult
    public func cancel() -> Bool {
        host.live?.cancel(timer: id) == .ok
    }
}
