import CommPluginAPI
import Synchronization

/// One plugin task on a session's serialized context: a `post` (runs once)
/// or a timer (`timer_start`: once after a delay, or every period). Its
/// function gets exactly one last call, with a non-OK status when it did
/// not simply run to the end (ABI: `commhost_task_fn`).
final class SessionTask: PluginTimers.Cancellable, @unchecked Sendable {
    // @unchecked: `library`, `comm`, `function`, `period` and `timerID` are
    // immutable after `start`; `finished`, `cancelRequested` and `queued` are
    // atomics; the plugin function is only called on the session's context.

    /// The library whose function this is.
    let library: PluginLibrary
    /// The comm the task belongs to, or nil for a session task.
    let comm: Comm?
    let function: PluginTaskFunction
    /// Nanoseconds between runs of a repeating timer; nil for a one-shot.
    let period: UInt64?
    /// The id timer_cancel takes; 0 for a post.
    private(set) var timerID: UInt64 = 0
    /// The session whose context runs the task. Strong: the session's task
    /// list holds the task until its last call, and every task has one by
    /// the end of the session.
    let session: Session

    /// Set once the last call has been made (or decided).
    let finished = Atomic<Bool>(false)
    let cancelRequested = Atomic<Bool>(false)
    /// The pending TimerQueue entry, 0 when none.
    private let queued = Atomic<UInt64>(0)

    init(library: PluginLibrary, comm: Comm?, function: PluginTaskFunction, period: UInt64?, session: Session) {
        self.library = library
        self.comm = comm
        self.function = function
        self.period = period
        self.session = session
    }

    /// Gives the task a timer id (before anyone can see it).
    func registerTimer() -> UInt64 {
        timerID = PluginTimers.register(self)
        return timerID
    }

    /// Runs on the task's session after `nanoseconds` (0: as soon as the context is free).
    func arm(afterNanoseconds nanoseconds: UInt64) {
        if nanoseconds == 0 && timerID == 0 {
            session.enqueueTask(self)
            return
        }
        // The entry holds the task strongly until it fires or markFinished
        // cancels it (no weak reference: LeakSanitizer cannot follow its
        // side table's tagged pointer).
        let id = TimerQueue.shared.schedule(afterNanoseconds: nanoseconds) {
            self.queued.store(0, ordering: .relaxed)
            self.session.enqueueTask(self)
        }
        queued.store(id, ordering: .relaxed)
    }

    /// timer_cancel: false when the timer has had its last call or a cancel is under way.
    func cancel() -> Bool {
        guard !finished.load(ordering: .acquiring), !cancelRequested.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        let entry = queued.exchange(0, ordering: .relaxed)
        if entry != 0 { TimerQueue.shared.cancel(entry) }
        session.enqueueTask(self)
        return true
    }

    /// Calls the plugin's function with `status`. Call on the session's context.
    func call(_ status: commhost_status) {
        let function = self.function
        try? library.call {
            function.function(function.data, status)
            return COMMHOST_OK
        }
    }

    /// Marks the last call made; false when it already was.
    func markFinished() -> Bool {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        let entry = queued.exchange(0, ordering: .relaxed)
        if entry != 0 { TimerQueue.shared.cancel(entry) }
        if timerID != 0 { PluginTimers.remove(timerID) }
        return true
    }
}
