/// A target's `isolation`: where its library's code runs.
public enum Isolation: String, Sendable, CaseIterable {
    /// `"in-process"` (the default): the library is loaded into the host
    /// itself; a crash in it ends the host.
    case inProcess = "in-process"
    /// `"process"`: the library is loaded into one `commhost worker` child
    /// process, shared by every session; a crash ends only the worker, whose
    /// comms are closed and which is restarted (see `WorkerSettings`).
    case process
}
