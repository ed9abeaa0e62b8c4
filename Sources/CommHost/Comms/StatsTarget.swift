import Synchronization

/// The counters of one `target_name`, shared by that target's comms in
/// every session. Each comm holds its target's counters, so counting a
/// message is one relaxed atomic add: no lock and no lookup per message.
final class StatsTarget: Sendable {
    /// The target counted.
    let name: String
    /// Comms of this target opened successfully, by the client or by a plugin.
    let opened = Atomic<Int>(0)
    /// `comm_msg` frames from clients handed to this target's handler.
    let messagesIn = Atomic<Int>(0)
    /// `comm_msg` frames this target's plugin sent (and the host accepted).
    let messagesOut = Atomic<Int>(0)
    /// How long each callback into the handler (open, message, close) took.
    let handlerTime = StatsHistogram()

    init(name: String) {
        self.name = name
    }

    /// Runs `body` (one handler callback) and records how long it took.
    @inline(__always)
    func timed<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        let start = MonotonicClock.nanoseconds()
        defer { handlerTime.record(nanoseconds: MonotonicClock.nanoseconds() &- start) }
        return try body()
    }
}
