import Glibc

/// Watches a set of files through inotify on their directories (linkers
/// write a temporary file and rename it over the target, so watching the
/// file itself would lose it) and reports each changed file once it has
/// settled: no event for `debounce` and the same size on two looks. Events
/// that count: close-after-write, moved-to and create. A queue overflow
/// reports every watched file (the receiver compares hashes). Costs nothing
/// unless started.
final class FileWatcher: Sendable {
    private struct Pending {
        var firstSeen: Double
        var lastEvent: Double
        var lastSize: Int64
    }

    private struct State {
        var files: Set<String> = []
        var watches: [String: Int32] = [:]
        var directories: [Int32: String] = [:]
        var pending: [String: Pending] = [:]
        var running = false
    }

    private let inotify: Inotify
    private let debounce: Double
    private let onChange: @Sendable (String, Double) -> Void
    private let logger: Logger
    /// Guards the watches and pending changes: the watch thread and the reloader's calls both touch them.
    private let state = Locked(State())

    /// A watcher that calls `onChange(path, firstSeen)` (monotonic seconds of
    /// the first event of the burst) from its own thread.
    init(debounceMilliseconds: Int, logger: Logger, onChange: @escaping @Sendable (String, Double) -> Void) throws(Errno) {
        inotify = try Inotify()
        debounce = Double(debounceMilliseconds) / 1000
        self.logger = logger
        self.onChange = onChange
    }

    /// Watches exactly `files` (absolute, resolved paths) from now on.
    func watch(files: Set<String>) {
        let directories = Set(files.map { path in String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) })
        state.withLock { state in
            state.files = files
            for (directory, wd) in state.watches where !directories.contains(directory) {
                inotify.unwatch(wd)
                state.watches[directory] = nil
                state.directories[wd] = nil
            }
            for directory in directories where state.watches[directory] == nil {
                do {
                    let wd = try inotify.watch(directory: directory.isEmpty ? "/" : directory,
                                               mask: Inotify.closeWrite | Inotify.movedTo | Inotify.create)
                    state.watches[directory] = wd
                    state.directories[wd] = directory
                } catch {
                    logger.error("cannot watch a directory for reloads", [("directory", .string(directory)), ("error", .string("\(error)"))])
                }
            }
            state.pending = state.pending.filter { files.contains($0.key) }
        }
    }

    /// Starts the watching thread.
    func start() {
        let first = state.withLock { state -> Bool in
            defer { state.running = true }
            return !state.running
        }
        guard first else { return }
        do throws(Errno) {
            try HostThread.start(name: "watcher") { [self] in loop() }
        } catch {
            state.withLock { $0.running = false }
            logger.error("cannot start the thread that watches for reloads; files are not watched",
                         [("error", .string("\(error)"))])
        }
    }

    /// Stops the watching thread (within one poll interval).
    func stop() {
        state.withLock { $0.running = false }
    }

    private func loop() {
        while state.withLock({ $0.running }) {
            let events = inotify.read(waitingAtMost: 25)
            let now = MonotonicClock.seconds()
            var ready: [(String, Double)] = []
            state.withLock { state in
                for event in events {
                    if event.mask & Inotify.overflow != 0 {
                        logger.warning("inotify queue overflowed; rescanning every watched library")
                        for file in state.files where state.pending[file] == nil {
                            state.pending[file] = Pending(firstSeen: now, lastEvent: now, lastSize: -1)
                        }
                        continue
                    }
                    guard let directory = state.directories[event.watch], !event.name.isEmpty else { continue }
                    let path = directory + "/" + event.name
                    guard state.files.contains(path) else { continue }
                    let first = state.pending[path]?.firstSeen ?? now
                    state.pending[path] = Pending(firstSeen: first, lastEvent: now, lastSize: state.pending[path]?.lastSize ?? -1)
                }
                for (path, pending) in state.pending where now - pending.lastEvent >= debounce {
                    let size = Self.size(of: path)
                    if size == pending.lastSize && size >= 0 {
                        state.pending[path] = nil
                        ready.append((path, pending.firstSeen))
                    } else {
                        // Not settled yet (or gone for a moment): look again after another interval.
                        state.pending[path]?.lastSize = size
                        state.pending[path]?.lastEvent = now
                    }
                }
            }
            for (path, seen) in ready { onChange(path, seen) }
        }
    }

    private static func size(of path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : -1
    }
}
