import CommPluginAPI

/// A task given to the host's post or timer_start: the closure and the
/// session whose serialized context it runs on, boxed as the `data` pointer.
/// The box holds one reference from the moment it is handed over until the
/// task's last call (any status but OK, or the OK call of a post or one-shot
/// timer), which gives it back; when the host refuses the task, the kit
/// gives it back at once.
final class ScheduledTask: Sendable {
    private let session: Session
    private let repeats: Bool
    /// What the task is, for a log line when it throws.
    private let what: String
    private let body: @Sendable () throws -> Void

    init(session: Session, repeats: Bool, what: String, body: @escaping @Sendable () throws -> Void) {
        self.session = session
        self.repeats = repeats
        self.what = what
        self.body = body
    }

    /// Hands the task to the host's post, on `comm`'s context when given,
    /// else the session's. Throws the host's refusal.
    func post(comm: OpaquePointer?) throws {
        let table = try session.host.liveTable(for: "post")
        let data = Unmanaged.passRetained(self)
        let status = table.post(session: session.handle, comm: comm, { ScheduledTask.call($0, $1) }, data.toOpaque())
        guard status == .ok else {
            data.release()
            throw PluginError(status, "the host refused to post \(what): \(status)")
        }
    }

    /// Hands the task to the host's timer_start; returns the timer.
    func startTimer(comm: OpaquePointer?, delay: Duration, period: Duration?) throws -> HostTimer {
        let table = try session.host.liveTable(for: "startTimer")
        let data = Unmanaged.passRetained(self)
        let periodMS = period.map { max(Self.milliseconds($0), 1) } ?? 0
        let (status, timer) = table.startTimer(session: session.handle, comm: comm, delay: Self.milliseconds(delay),
                                               period: periodMS, { ScheduledTask.call($0, $1) }, data.toOpaque())
        guard status == .ok else {
            data.release()
            throw PluginError(status, "the host refused to start a timer for \(what): \(status)")
        }
        return HostTimer(id: timer, host: session.host)
    }

    /// The `commhost_task_fn` every task is given.
    private static func call(_ data: UnsafeMutableRawPointer?, _ status: commhost_status) {
        guard let data else { return }
        let box = Unmanaged<ScheduledTask>.fromOpaque(data)
        let task = box.takeUnretainedValue()
        if status == COMMHOST_OK {
            task.run()
        }
        if status != COMMHOST_OK || !task.repeats {
            box.release()
        }
    }

    private func run() {
        SerializedContext.run(on: session.handle) {
            do {
                try body()
            } catch {
                let text = (error as? PluginError)?.message ?? JSONCoding.describe(error)
                session.host.log(.error, "\(what) failed: \(text)")
            }
        }
    }

    /// Whole milliseconds, rounded up; 0 for a negative duration.
    private static func milliseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, seconds > 0 || attoseconds > 0 else { return 0 }
        let perMillisecond: Int64 = 1_000_000_000_000_000
        let fraction = (attoseconds + perMillisecond - 1) / perMillisecond
        let (total, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        return overflow ? UInt64.max : UInt64(clamping: total) + UInt64(clamping: fraction)
    }
}
