/// The figures of one `commhost_stats_reply`, as a value: what the host
/// encodes into the reply's `content` and what `commhost stats` decodes
/// from it. The JSON shape is documented in docs/STATS.md.
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

    /// Why a reply's content could not be read as a snapshot.
    public struct DecodeError: Error, Sendable, CustomStringConvertible {
        /// What was wrong, naming the JSON path.
        public var description: String
    }

    /// Reads a reply's `content` object (the shape `json` writes).
    public init(content: JSONDocument.Node) throws(DecodeError) {
        func member(_ node: JSONDocument.Node, _ key: String, _ path: String) throws(DecodeError) -> JSONDocument.Node {
            guard let found = node[key] else { throw DecodeError(description: "stats reply: \(path).\(key) is missing") }
            return found
        }
        func int(_ node: JSONDocument.Node, _ key: String, _ path: String) throws(DecodeError) -> Int {
            guard let value = try member(node, key, path).intValue else { throw DecodeError(description: "stats reply: \(path).\(key) is not an integer") }
            return value
        }
        func number(_ node: JSONDocument.Node, _ key: String, _ path: String) throws(DecodeError) -> Double {
            guard case .number(let text) = try member(node, key, path).value, let value = Double(text) else {
                throw DecodeError(description: "stats reply: \(path).\(key) is not a number")
            }
            return value
        }
        func members(_ node: JSONDocument.Node, _ key: String, _ path: String) throws(DecodeError) -> [JSONDocument.Member] {
            guard case .object(let list) = try member(node, key, path).value else {
                throw DecodeError(description: "stats reply: \(path).\(key) is not an object")
            }
            return list
        }
        uptimeSeconds = try number(content, "uptime_s", "content")
        sessions = try int(content, "sessions", "content")
        reloads = try int(content, "reloads", "content")
        var errors: [String: Int] = [:]
        for entry in try members(content, "errors", "content") {
            guard let count = entry.value.intValue else { throw DecodeError(description: "stats reply: content.errors.\(entry.key) is not an integer") }
            errors[entry.key] = count
        }
        self.errors = errors
        var open: [String: Int] = [:]
        for entry in try members(content, "open_comms", "content") {
            guard let count = entry.value.intValue else { throw DecodeError(description: "stats reply: content.open_comms.\(entry.key) is not an integer") }
            open[entry.key] = count
        }
        var targets: [String: Target] = [:]
        for entry in try members(content, "targets", "content") {
            let path = "content.targets.\(entry.key)"
            let node = entry.value
            let time = try member(node, "handler_time_us", path)
            let timePath = path + ".handler_time_us"
            targets[entry.key] = Target(
                open: open[entry.key] ?? 0, opened: try int(node, "opened", path),
                messagesIn: try int(node, "messages_in", path), messagesOut: try int(node, "messages_out", path),
                handlerTime: HandlerTime(count: try int(time, "count", timePath), meanNanoseconds: try number(time, "mean", timePath) * 1000,
                                         p50Nanoseconds: try number(time, "p50", timePath) * 1000, p99Nanoseconds: try number(time, "p99", timePath) * 1000))
        }
        for (name, count) in open where targets[name] == nil { targets[name] = Target(open: count) }
        self.targets = targets
        var workers: [String: Worker] = [:]
        if content["workers"] != nil {
            for entry in try members(content, "workers", "content") {
                let path = "content.workers.\(entry.key)"
                let node = entry.value
                let lastCrash: String?
                switch try member(node, "last_crash", path).value {
                case .null: lastCrash = nil
                case .string(let text): lastCrash = text
                default: throw DecodeError(description: "stats reply: \(path).last_crash is not a string or null")
                }
                guard case .bool(let disabled) = try member(node, "disabled", path).value else {
                    throw DecodeError(description: "stats reply: \(path).disabled is not a boolean")
                }
                workers[entry.key] = Worker(pid: try int(node, "pid", path), restarts: try int(node, "restarts", path),
                                            crashes: try int(node, "crashes", path), lastCrash: lastCrash, disabled: disabled)
            }
        }
        self.workers = workers
    }

    /// `value` with exactly three decimals ("12.345"), for JSON and tables.
    public static func fixed3(_ value: Double) -> String {
        guard value.isFinite else { return "0.000" }
        let thousandths = Int((abs(value) * 1000).rounded())
        let sign = value < 0 && thousandths > 0 ? "-" : ""
        return "\(sign)\(thousandths / 1000).\(String(thousandths % 1000 + 1000).dropFirst())"
    }
}
