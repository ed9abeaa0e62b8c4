import Glibc

/// The host's own threads (a transport's writer, a socket session's reader,
/// the timer, signal, watcher and worker threads): detached POSIX threads
/// made with `pthread_create`, so the host needs no Foundation `Thread`
/// (linking Foundation maps it, FoundationInternationalization and ICU into
/// every host: about 6 MiB of resident memory at idle).
///
/// Stacks are glibc's default (`RLIMIT_STACK`, 8 MiB of address space):
/// plugin callbacks run on these threads, so their depth is the plugin's
/// business, and only the pages a thread touches count as resident.
enum HostThread {
    /// Starts a detached thread named `name` (cut to the kernel's 15 bytes)
    /// that runs `body` and ends. `afterwards` runs last on that thread, once
    /// `body` and everything it captured are released: a waiter it wakes
    /// knows the thread holds nothing any more (a process that exits while a
    /// thread still holds a session ends with that session alive). Throws the
    /// `pthread_create` error (EAGAIN when the process or system is out of
    /// threads); neither closure then runs.
    static func start(name: String, _ body: @escaping @Sendable () -> Void,
                      afterwards: @escaping @Sendable () -> Void = {}) throws(Errno) {
        let start = Start(name: name, body: body, afterwards: afterwards)
        let context = Unmanaged.passRetained(start).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let afterwards: @Sendable () -> Void
            do {
                // Released at the end of this scope at the latest, with the body's captures.
                let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
                start.nameThread()
                start.body()
                afterwards = start.afterwards
            }
            afterwards()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            throw Errno(rawValue: result)
        }
        pthread_detach(thread)
    }

    /// What a new thread receives: its name and its work.
    private final class Start: Sendable {
        let name: String
        let body: @Sendable () -> Void
        let afterwards: @Sendable () -> Void

        init(name: String, body: @escaping @Sendable () -> Void, afterwards: @escaping @Sendable () -> Void) {
            // The kernel keeps 15 bytes of a thread's name; keep whole UTF-8 characters.
            var cut = Substring(name)
            while cut.utf8.count > 15 { cut.removeLast() }
            self.name = String(cut)
            self.body = body
            self.afterwards = afterwards
        }

        /// Names the calling thread (what `top -H` and /proc/PID/task/TID/comm
        /// show). Glibc's module does not offer the GNU `pthread_setname_np`,
        /// so this writes the name where that function writes it.
        func nameThread() {
            let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { return }
            _ = name.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
    }
}
