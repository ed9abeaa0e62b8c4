import CommHost
import Glibc

/// `commhost stats --socket PATH [--json] [--timeout SECONDS]`: asks the host
/// listening on PATH for its counters (one `commhost_stats_request` on a
/// connection of its own) and prints them as a table, or the reply's
/// `content` as JSON with `--json`. Exit 0 on success, 1 when the host cannot
/// be reached or answers something unreadable, 2 on a usage error.
func runStats(_ arguments: [String]) -> Int32 {
    let args: Arguments
    do {
        args = try Arguments(arguments, spec: .init(options: ["socket", "timeout"], flags: ["json"]))
    } catch {
        return usageFailure(error.message)
    }
    guard let path = args.value("socket") else { return usageFailure("stats needs --socket PATH (the socket a `commhost serve --socket` listens on)") }
    var timeout = 10.0
    if let text = args.value("timeout") {
        guard let value = Double(text), value > 0, value <= 3600 else { return usageFailure("--timeout must be a number of seconds in (0, 3600], not \"\(text)\"") }
        timeout = value
    }
    let content: [UInt8]
    switch fetchStatsContent(path: path, timeout: timeout) {
    case .success(let bytes): content = bytes
    case .failure(let failure):
        emit("commhost stats: \(failure.message)", toError: true)
        return 1
    }
    if args.flag("json") {
        emit(String(decoding: content, as: UTF8.self))
        return 0
    }
    do {
        let snapshot = try StatsSnapshot(content: try JSONDocument(parsing: content).root)
        emit(statsTable(snapshot, socket: path))
        return 0
    } catch {
        emit("commhost stats: the host's reply could not be read: \(error)", toError: true)
        return 1
    }
}

/// Why the stats could not be fetched, in a line a person can act on.
struct StatsFailure: Error {
    var message: String
}

/// Connects to `path`, sends one stats request and returns the reply's
/// `content` object, as the bytes the host wrote.
func fetchStatsContent(path: String, timeout: Double) -> Result<[UInt8], StatsFailure> {
    let socket: UnixSocket
    do {
        socket = try UnixSocket.stream()
    } catch {
        return .failure(StatsFailure(message: "\(error)"))
    }
    defer { socket.close() }
    do {
        try socket.connect(to: path)
    } catch {
        let hint = error.errno == .noSuchFileOrDirectory || error.errno == .connectionRefused ? "; is `commhost serve --socket \(path)` running?" : ""
        return .failure(StatsFailure(message: "cannot connect: \(error)\(hint)"))
    }
    let request = Array("{\"msg_type\":\"commhost_stats_request\",\"header\":{\"msg_id\":\"commhost-stats\"},\"content\":{}}\n".utf8)
    let sent = request.withUnsafeBytes { raw in
        Result { () throws(Errno) in try FileSystem.writeAll(socket.rawValue, raw) }
    }
    if case .failure(let failure) = sent {
        return .failure(StatsFailure(message: "sending the request failed: \(failure)"))
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
            guard let content = document.root["content"] else { return .failure(StatsFailure(message: "the host's stats reply has no content")) }
            return .success(document.sourceBytes(of: content))
        }
        let left = deadline - MonotonicClock.seconds()
        guard left > 0 else { return .failure(StatsFailure(message: "no stats reply within \(timeout) s")) }
        var entry = pollfd(fd: socket.rawValue, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, Int32(min(left * 1000, 3_600_000).rounded(.up)))
        if ready < 0 && Errno.current == .interrupted { continue }
        guard ready > 0 else { continue }
        let n = chunk.withUnsafeMutableBytes { read(socket.rawValue, $0.baseAddress!, $0.count) }
        let failure = n < 0 ? Errno.current : nil
        if failure == .interrupted || failure == .wouldBlock { continue }
        guard n > 0 else {
            return .failure(StatsFailure(message: failure.map { "reading the reply failed: \($0)" }
                                                  ?? "the host closed the connection without a stats reply"))
        }
        pending += chunk[..<n]
    }
}

/// The snapshot as a text table: a summary line, one row per target, one
/// per worker-served library (when there is any), then the error counts.
func statsTable(_ stats: StatsSnapshot, socket: String) -> String {
    var lines = ["commhost at \(socket): up \(StatsSnapshot.fixed3(stats.uptimeSeconds)) s, \(stats.sessions) session(s), \(stats.reloads) reload(s)", ""]
    let header = ["target", "open", "opened", "msgs in", "msgs out", "calls", "mean µs", "p50 µs", "p99 µs"]
    var rows = [header]
    for (name, target) in stats.targets.sorted(by: { $0.key < $1.key }) {
        let time = target.handlerTime
        rows.append([name, "\(target.open)", "\(target.opened)", "\(target.messagesIn)", "\(target.messagesOut)", "\(time.count)",
                     StatsSnapshot.fixed3(time.meanNanoseconds / 1000), StatsSnapshot.fixed3(time.p50Nanoseconds / 1000),
                     StatsSnapshot.fixed3(time.p99Nanoseconds / 1000)])
    }
    if rows.count == 1 { rows.append(["(no targets)", "", "", "", "", "", "", "", ""]) }
    lines += aligned(rows)
    lines.append("")
    if !stats.workers.isEmpty {
        var workerRows = [["worker library", "pid", "restarts", "crashes", "disabled", "last crash"]]
        for (path, worker) in stats.workers.sorted(by: { $0.key < $1.key }) {
            workerRows.append([path, worker.pid == 0 ? "-" : "\(worker.pid)", "\(worker.restarts)", "\(worker.crashes)",
                               worker.disabled ? "yes" : "no", worker.lastCrash ?? "-"])
        }
        lines += aligned(workerRows, leftColumns: [0, 5])
        lines.append("")
    }
    if stats.errors.isEmpty {
        lines.append("errors: none")
    } else {
        lines.append("errors:")
        let width = stats.errors.keys.map(\.count).max() ?? 0
        for (name, count) in stats.errors.sorted(by: { $0.key < $1.key }) {
            lines.append("  " + name + String(repeating: " ", count: width - name.count) + "  \(count)")
        }
    }
    return lines.joined(separator: "\n")
}

/// `rows` as lines of columns two spaces apart, the columns in `leftColumns`
/// aligned left (padded at the end), the others right.
private func aligned(_ rows: [[String]], leftColumns: Set<Int> = [0]) -> [String] {
    let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return rows.map { row in
        let cells = row.enumerated().map { column, text in
            let padding = String(repeating: " ", count: widths[column] - text.count)
            return leftColumns.contains(column) ? text + padding : padding + text
        }
        var line = cells.joined(separator: "  ")
        while line.hasSuffix(" ") { line.removeLast() }
        return line
    }
}
