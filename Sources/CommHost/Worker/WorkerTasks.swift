import CommPluginAPI

/// The plugin's posted tasks and timers, by the worker's task id (what a
/// `schedule` host call names and a `task` request runs). An entry lives
/// from just before its schedule call goes out (so a run the host sends at
/// once finds it) until its last call: any status but OK, or the OK run of
/// a post or one-shot timer; or until the host refuses the schedule.
final class WorkerTasks: Sendable {
    /// One task: the plugin's function and data, and whether OK runs repeat.
    struct Entry {
        var function: commhost_task_fn
        var data: UnsafeMutableRawPointer?
        var repeats: Bool
    }

    private struct State {
        var next: UInt64 = 1
        var entries: [UInt64: Entry] = [:]
    }

    // @unchecked through Locked: the data pointers belong to the plugin; the worker only hands them back.
    private let state = Locked(State())

    /// Registers `entry`; returns its task id.
    func register(_ entry: Entry) -> UInt64 {
        state.withLock { state in
            defer { state.next += 1 }
            state.entries[state.next] = entry
            return state.next
        }
    }

    /// The host refused to schedule `task`: it will never run.
    func forget(_ task: UInt64) {
        state.withLock { $0.entries[task] = nil }
    }

    /// Runs task `task` with `status`, forgetting it first when this is its
    /// last call. Returns false when no such task is registered.
    func run(_ task: UInt64, status: commhost_status) -> Bool {
        let entry: Entry? = state.withLock { state in
            guard let entry = state.entries[task] else { return nil }
            if status != COMMHOST_OK || !entry.repeats { state.entries[task] = nil }
            return entry
        }
        guard let entry else { return false }
        entry.function(entry.data, status)
        return true
    }
}
