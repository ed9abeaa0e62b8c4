import Glibc

/// SIGINT, SIGTERM and SIGHUP for a serving host: blocked in every thread
/// from the moment serving starts and taken by one thread with `sigwait`,
/// so a signal that arrives while the host is still starting waits for its
/// handler instead of being lost or killing the process half-way.
enum HostSignals {
    /// The signals a serving host acts on.
    static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Blocks the handled signals in the calling thread and so in every
    /// thread it starts afterwards. Call before serving starts any thread.
    static func block() {
        var set = signalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Starts the thread that waits for the handled signals and runs
    /// `actions[signal]` for each one that arrives (on that thread). Throws
    /// when the thread cannot start: the signals would then stay blocked.
    static func handle(_ actions: [Int32: @Sendable () -> Void]) throws(Errno) {
        try HostThread.start(name: "signals") {
            var set = signalSet()
            while true {
                var number: Int32 = 0
                guard sigwait(&set, &number) == 0 else { continue }
                actions[number]?()
            }
        }
    }

    private static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for number in handled { sigaddset(&set, number) }
        return set
    }
}
