/// The figures of one `commhost_stats_reply`, as a value: what the host
/// encodes into the reply's `content` and what `commhost stats` decodes
/// from it (`StatsClient`, in Host). The JSON shape is documented in docs/STATS.md.
public struct StatsSnapshot: Sendable, Equatable {
    /// Seconds since the host started.
    public var uptimeSeconds: Double
    /// Sessions connected now.
    public var sessions: Int
    /// Reloads that switched code since start.
    public var reloads: Int
    /// Error frames sent since start, per `ename`.
    public var errors: [String: Int]
    /// Per `target_name`: every bound target, and any other that was counted.
    public var targets: [String: Target]
    /// Per library path, for libraries served by a worker process.
    public var workers: [String: Worker]

    /// The figures of one worker-served library.
    public struct Worker: Sendable, Equatable {
        /// The pid of the worker serving it now (0 while none runs).
        public var pid: Int
        /// Workers started to replace one that crashed.
        public var restarts: Int
        /// Workers that died (signal, exit, missed deadline).
        public var crashes: Int
        /// How the last one died, e.g. "signal 11 (Segmentation fault)".
        public var lastCrash: String?
        /// Whether its targets were disabled after too many crashes.
        public var disabled: Bool

        /// A worker's figures; zero unless given.
        public init(pid: Int = 0, restarts: Int = 0, crashes: Int = 0, lastCrash: String? = nil, disabled: Bool = false) {
            self.pid = pid
            self.restarts = restarts
            self.crashes = crashes
            self.lastCrash = lastCrash
            self.disabled = disabled
        }
    }

    /// The figures of one target.
    public struct Target: Sendable, Equatable {
        /// Comms of the target open now, in all sessions.
        public var open: Int
        /// Comms of the target opened since start (by clients or plugins).
        public var opened: Int
        /// `comm_msg` frames from clients handed to the target's handler.
        public var messagesIn: Int
        /// `comm_msg` frames the target's plugin sent.
        public var messagesOut: Int
        /// Time spent in the handler's open, message and close callbacks.
        public var handlerTime: HandlerTime

        /// A target's figures; zero unless given.
        public init(open: Int = 0, opened: Int = 0, messagesIn: Int = 0, messagesOut: Int = 0, handlerTime: HandlerTime = HandlerTime()) {
            self.open = open
            self.opened = opened
            self.messagesIn = messagesIn
            self.messagesOut = messagesOut
            self.handlerTime = handlerTime
        }
    }

    /// How long handler callbacks took: how many, their mean and two
    /// percentiles (within 6.25 %), in nanoseconds.
    public struct HandlerTime: Sendable, Equatable {
        /// Callbacks timed.
        public var count: Int
        /// Mean duration.
        public var meanNanoseconds: Double
        /// Median duration.
        public var p50Nanoseconds: Double
        /// 99th percentile duration.
        public var p99Nanoseconds: Double

        /// Figures for `count` callbacks; all zero by default.
        public init(count: Int = 0, meanNanoseconds: Double = 0, p50Nanoseconds: Double = 0, p99Nanoseconds: Double = 0) {
            self.count = count
            self.meanNanoseconds = meanNanoseconds
            self.p50Nanoseconds = p50Nanoseconds
            self.p99Nanoseconds = p99Nanoseconds
        }
    }

    /// A snapshot with the given figures.
    public init(uptimeSeconds: Double, sessions: Int, reloads: Int, errors: [String: Int], targets: [String: Target],
                workers: [String: Worker] = [:]) {
        self.uptimeSeconds = uptimeSeconds
        self.sessions = sessions
        self.reloads = reloads
        self.errors = errors
        self.targets = targets
        self.workers = workers
    }

    // MARK: JSON

    /// The reply's `content` object: keys in a fixed order, maps sorted by
    /// key, durations in microseconds with three decimals.
    public var json: [UInt8] {
        var out = "{\"uptime_s\":\(Self.fixed3(uptimeSeconds)),\"sessions\":\(sessions),\"reloads\":\(reloads),\"open_comms\":{"
        out += targets.sorted { $0.key < $1.key }.map { "\(JSONText.string($0.key)):\($0.value.open)" }.joined(separator: ",")
        out += "},\"errors\":{"
        out += errors.sorted { $0.key < $1.key }.map { "\(JSONText.string($0.key)):\($0.value)" }.joined(separator: ",")
        out += "},\"targets\":{"
        out += targets.sorted { $0.key < $1.key }.map { name, target in
            let time = target.handlerTime
            return "\(JSONText.string(name)):{\"opened\":\(target.opened),\"messages_in\":\(target.messagesIn),\"messages_out\":\(target.messagesOut),"
                + "\"handler_time_us\":{\"count\":\(time.count),\"mean\":\(Self.fixed3(time.meanNanoseconds / 1000)),"
                + "\"p50\":\(Self.fixed3(time.p50Nanoseconds / 1000)),\"p99\":\(Self.fixed3(time.p99Nanoseconds / 1000))}}"
        }.joined(separator: ",")
        out += "},\"workers\":{"
        out += workers.sorted { $0.key < $1.key }.map { path, worker in
            "\(JSONText.string(path)):{\"pid\":\(worker.pid),\"restarts\":\(worker.restarts),\"crashes\":\(worker.crashes),"
                + "\"last_crash\":\(worker.lastCrash.map(JSONText.string) ?? "null"),\"disabled\":\(worker.disabled)}"
        }.joined(separator: ",")
        out += "}}"
        return Array(out.utf8)
    }

    /// `value` with exactly three decimals ("12.345"), for JSON and tables.
    public static func fixed3(_ value: Double) -> String {
        guard value.isFinite else { return "0.000" }
        let thousandths = Int((abs(value) * 1000).rounded())
        let sign = value < 0 && thousandths > 0 ? "-" : ""
        return "\(sign)\(thousandths / 1000).\(String(thousandths % 1000 + 1000).dropFirst())"
    }
}
