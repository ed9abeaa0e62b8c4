import Glibc

/// `commhost worker`: the child process that runs one plugin library for a
/// host target with `"isolation": "process"` (issue 12). Started by the
/// host, never by people:
///
///     commhost worker --fd N --library STAGED_PATH
///                     [--address-space BYTES] [--cpu-seconds N] [--open-files N] [--max-frame-bytes N]
///
/// `N` is the worker's end of an `AF_UNIX` `SOCK_STREAM` socket pair the
/// host made and let the child inherit. The worker applies the limits,
/// loads the library, sends `hello` (or `refusal` and exits 1), then serves
/// requests (`WorkerServer`) until it has answered `deinitialize` or the
/// host closes its end (exit 0). Its stdin reads from /dev/null and its
/// stdout is its stderr (the host's), so neither it nor the plugin can touch
/// a host's stdio wire; log lines are JSON on stderr.
public enum WorkerMain {
    /// Runs the worker; returns its exit status.
    public static func run(_ options: WorkerOptions) -> Int32 {
        let logger = Logger()
        // The host decides when a worker ends (deinitialize, or closing its
        // end), so the signals a terminal or a service manager sends the
        // whole group wait here as they do in a serving host; anything else
        // (SIGXCPU from the limits) is not blocked.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        HostSignals.block()

        // The host's stdin and stdout may be its wire (serve on stdio): the
        // plugin reads end of file and writes to stderr, whatever it does.
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if null >= 0 {
            dup2(null, STDIN_FILENO)
            close(null)
        }
        dup2(STDERR_FILENO, STDOUT_FILENO)

        guard fcntl(options.fd, F_GETFD) >= 0 else {
            logger.error("worker cannot start: --fd is not an open descriptor", [("fd", .int(Int(options.fd)))])
            return 2
        }
        // Not passed on to anything the plugin starts.
        _ = fcntl(options.fd, F_SETFD, FD_CLOEXEC)
        closeInheritedDescriptors(keeping: options.fd)
        let channel = WorkerChannel(fd: options.fd, maxFrameBytes: options.maxFrameBytes)

        func refuse(_ reason: String) -> Int32 {
            // A host that is gone cannot be told; the status says it.
            try? channel.send(WorkerMessage.refusal(reason), id: 0)
            return 1
        }
        do {
            try options.limits.apply()
        } catch {
            return refuse(error.description)
        }
        let library: WorkerLibrary
        do {
            library = try WorkerLibrary.load(path: options.libraryPath)
        } catch {
            return refuse(error.reason)
        }
        let server = WorkerServer(channel: channel, library: library, logger: logger)
        do {
            try channel.send(WorkerMessage.hello(library.descriptor), id: 0)
        } catch {
            return 0
        }
        return server.serve()
    }

    /// Closes every descriptor above stderr but `kept`: whatever the host had
    /// open when it started the worker (client sockets, the listening socket,
    /// other workers' ends), which the worker must not hold open.
    private static func closeInheritedDescriptors(keeping kept: Int32) {
        guard let directory = opendir("/proc/self/fd") else { return }
        var open: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if let fd = Int32(name), fd > 2, fd != kept, fd != dirfd(directory) { open.append(fd) }
        }
        closedir(directory)
        for fd in open { close(fd) }
    }
}
