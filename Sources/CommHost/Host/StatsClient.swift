import Glibc

/// The client side of the stats request, for `commhost stats`: one
/// `commhost_stats_request` on a connection of its own to a host serving a
/// Unix socket, and the reply's `content` read back as a `StatsSnapshot`.
public enum StatsClient {
    /// Why the stats could not be fetched, in a line a person can act on.
    public struct Failure: Error, Sendable {
        /// What went wrong, in a line a person can act on.
        public var message: String
    }

    /// Connects to `path`, sends one stats request and returns the reply's
    /// `content` object, as the bytes the host wrote.
    public static func fetchContent(path: String, timeout: Double) -> Result<[UInt8], Failure> {
        let socket: UnixSocket
        do {
            socket = try UnixSocket.stream()
        } catch {
            return .failure(Failure(message: "\(error)"))
        }
        defer { socket.close() }
        do {
            try socket.connect(to: path)
        } catch {
            let hint = error.errno == .noSuchFileOrDirectory || error.errno == .connectionRefused ? "; is `commhost serve --socket \(path)` running?" : ""
            return .failure(Failure(message: "cannot connect: \(error)\(hint)"))
        }
        let request = Array("{\"msg_type\":\"commhost_stats_request\",\"header\":{\"msg_id\":\"commhost-stats\"},\"content\":{}}\n".utf8)
        let sent = request.withUnsafeBytes { raw in
            Result { () throws(Errno) in try FileSystem.writeAll(socket.rawValue, raw) }
        }
        if case .failure(let failure) = sent {
            return .failure(Failure(message: "sending the request failed: \(failure)"))
        }
        // Read lines until the reply (a new session gets nothing else), waiting
        // at most `timeout` in all.
        let deadline = MonotonicClock.seconds() + timeout
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                guard let document = try? JSONDocument(parsing: line),
                      case .string("commhost_stats_reply") = document.root["msg_type"]?.value else { continue }
                guard let content = document.root["content"] else { return .failure(Failure(message: "the host's stats reply has no content")) }
                return .success(document.sourceBytes(of: content))
            }
            let left = deadline - MonotonicClock.seconds()
            guard left > 0 else { return .failure(Failure(message: "no stats reply within \(timeout) s")) }
            var entry = pollfd(fd: socket.rawValue, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(min(left * 1000, 3_600_000).rounded(.up)))
            if ready < 0 && Errno.current == .interrupted { continue }
            guard ready > 0 else { continue }
            let n = chunk.withUnsafeMutableBytes { read(socket.rawValue, $0.baseAddress!, $0.count) }
            let failure = n < 0 ? Errno.current : nil
            if failure == .interrupted || failure == .wouldBlock { continue }
            guard n > 0 else {
                return .failure(Failure(message: failure.map { "reading the reply failed: \($0)" }
                                            ?? "the host closed the connection without a stats reply"))
            }
            pending += chunk[..<n]
        }
    }
}

extension StatsSnapshot {
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
}
