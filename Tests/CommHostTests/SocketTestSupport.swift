import CommHost
import Foundation
import Glibc
import XCTest

/// A `commhost serve --socket` process for the socket and concurrency tests:
/// the real binary, a manifest binding the example plugins and the probe
/// fixture, its log (stderr) in a file, and the probe's events file.
///
/// Every wait has a generous timeout that is a safety net, never an
/// assertion about speed.
final class SocketHost: Sendable {
    /// The test's private directory (manifest, probe library, socket, log).
    let directory: String
    /// Where the host listens.
    let socketPath: String
    /// The host's stderr.
    let logPath: String
    /// Where the probe plugin appends every event (one per line).
    let eventsPath: String
    /// The running host.
    let process: Process

    /// Targets every test manifest binds.
    static let echo = "commhost.echo"
    static let counter = "commhost.counter"
    static let probe = "probe"

    /// Compiles the probe into `directory` and writes a manifest there
    /// binding echo, counter and probe (whose events go to `events.txt`),
    /// with `limits` (manifest keys) when given; the targets named in
    /// `isolated` get `"isolation": "process"`. Returns the manifest's path.
    static func writeManifest(in directory: String, limits given: [String: Int] = [:], isolated: Set<String> = []) throws -> String {
        try TestSupport.compileC(source: TestSupport.fixture("probe_plugin.c"), output: directory + "/libprobe.so", flags: ["-pthread"])
        let members = given.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }
        let limits = given.isEmpty ? "" : ", \"limits\": {\(members.joined(separator: ", "))}"
        func isolation(_ target: String) -> String { isolated.contains(target) ? #", "isolation": "process""# : "" }
        let manifest = """
        {
          "version": 1,
          "plugin_paths": ["\(directory)"],
          "targets": [
            {"target_name": "\(echo)", "library": "libEchoPlugin.so", "handler": "echo"\(isolation(echo))},
            {"target_name": "\(counter)", "library": "libCounterPlugin.so", "handler": "counter"\(isolation(counter))},
            {"target_name": "\(probe)", "library": "libprobe.so", "handler": "probe"\(isolation(probe)),
             "config": {"events_file": "\(directory)/events.txt"}}
          ]\(limits)
        }
        """
        let path = directory + "/manifest.json"
        try manifest.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    /// Starts `commhost serve --socket` in a fresh private directory with
    /// the test manifest (the targets in `isolated` served by workers), and
    /// waits until it listens (unless `waitUntilListening` is false). The
    /// host is killed when the test ends if it is still running.
    convenience init(_ test: XCTestCase, limits: [String: Int] = [:], isolated: Set<String> = [], extraArguments: [String] = [],
                     waitUntilListening: Bool = true) throws {
        let directory = try TestSupport.temporaryDirectory(test)
        let manifest = try Self.writeManifest(in: directory, limits: limits, isolated: isolated)
        try self.init(test, directory: directory, manifest: manifest, socketPath: directory + "/host.sock",
                      extraArguments: extraArguments, waitUntilListening: waitUntilListening)
    }

    /// Starts `commhost serve --manifest manifest --socket socketPath` with
    /// its log going to a file in `directory`.
    init(_ test: XCTestCase, directory: String, manifest: String, socketPath: String, extraArguments: [String] = [],
         waitUntilListening: Bool = true, logName: String = "host.log") throws {
        signal(SIGPIPE, SIG_IGN)
        self.directory = directory
        self.socketPath = socketPath
        logPath = directory + "/" + logName
        eventsPath = directory + "/events.txt"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.commhostBinary)
        process.arguments = ["serve", "--manifest", manifest, "--socket", socketPath] + extraArguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        self.process = process
        test.addTeardownBlock {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        if waitUntilListening {
            guard socketWaitUntil(timeout: 60, { self.log.contains("\"msg\":\"listening\"") || !process.isRunning }), process.isRunning else {
                throw SocketTestFailure("the host did not start listening; its log:\n\(log)")
            }
        }
    }

    /// Everything the host logged so far.
    var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// The probe's events so far, one per line.
    var events: [String] {
        ((try? String(contentsOfFile: eventsPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Waits (safety net: `timeout` seconds) until `predicate` holds for the
    /// probe's events; returns them.
    @discardableResult
    func waitForEvents(timeout: Double = 30, _ predicate: ([String]) -> Bool) throws -> [String] {
        var seen: [String] = []
        guard socketWaitUntil(timeout: timeout, { seen = events; return predicate(seen) }) else {
            throw SocketTestFailure("the probe's events never matched; they are:\n\(seen.joined(separator: "\n"))\nhost log:\n\(log)")
        }
        return seen
    }

    /// Sends `signal` and waits for the host to exit; returns its exit
    /// status, or nil if it exited by a signal or did not exit in `timeout`.
    func stop(_ signal: Int32 = SIGTERM, timeout: Double = 60) -> Int32? {
        kill(process.processIdentifier, signal)
        return waitForExit(timeout: timeout)
    }

    /// Waits for the host to exit by itself; returns its exit status as `stop` does.
    func waitForExit(timeout: Double = 60) -> Int32? {
        guard socketWaitUntil(timeout: timeout, { !process.isRunning }) else { return nil }
        process.waitUntilExit()
        return process.terminationReason == .exit ? process.terminationStatus : nil
    }

    /// A new client connected to this host.
    func connect() throws -> SocketClient {
        try SocketClient(path: socketPath)
    }
}

/// A test failure with a message (thrown so a helper can stop the test).
struct SocketTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass.
func socketWaitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while !condition() {
        if Date() > deadline { return false }
        usleep(10_000)
    }
    return true
}

/// One client connection to a socket host: writes frames, reads the host's
/// frames line by line. Reads block for at most `timeout` seconds (a safety
/// net), then throw.
final class SocketClient {
    /// The connected descriptor.
    let fd: Int32
    /// How long one read may wait.
    var timeout: Double = 60
    private var buffer: [UInt8] = []
    private var start = 0
    private var closed = false

    /// Connects to the socket at `path`.
    init(path: String) throws {
        let socket = try UnixSocket.stream()
        do {
            try socket.connect(to: path)
        } catch {
            socket.close()
            throw error
        }
        fd = socket.rawValue
    }

    deinit { close() }

    /// Closes the connection (the host sees the client disconnect).
    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    /// Writes `object` as one JSON line.
    func send(_ object: [String: Any]) throws {
        var line = try JSONSerialization.data(withJSONObject: object)
        line.append(0x0A)
        if let failure = write(Array(line)) { throw SocketTestFailure("writing a frame failed: \(String(cString: strerror(failure)))") }
    }

    /// Writes `line` and a newline, as they are.
    func send(line: String) throws {
        if let failure = write(Array((line + "\n").utf8)) { throw SocketTestFailure("writing a line failed: \(String(cString: strerror(failure)))") }
    }

    /// Writes `bytes`; returns the errno of a failed write, or nil.
    func write(_ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { raw -> Int32? in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return errno }
                offset += n
            }
            return nil
        }
    }

    /// Sends `comm_open` for `commID` on `target` with `data`.
    func open(_ commID: String, target: String, data: [String: Any] = [:], msgID: String? = nil) throws {
        try send(["msg_type": "comm_open", "header": ["msg_id": msgID ?? "open-\(commID)"],
                  "content": ["comm_id": commID, "target_name": target, "data": data]])
    }

    /// Sends `comm_msg` on `commID` with `data`.
    func message(_ commID: String, _ data: [String: Any], msgID: String) throws {
        try send(["msg_type": "comm_msg", "header": ["msg_id": msgID], "content": ["comm_id": commID, "data": data]])
    }

    /// Asks for the host's stats and returns the reply's content.
    func stats() throws -> [String: Any] {
        try send(["msg_type": "commhost_stats_request", "header": ["msg_id": "stats"]])
        while true {
            let frame = try nextFrame()
            if frame["msg_type"] as? String == "commhost_stats_reply" {
                guard let content = frame["content"] as? [String: Any] else { throw SocketTestFailure("stats reply without content: \(frame)") }
                return content
            }
        }
    }

    /// The next frame, parsed. Throws at end of stream or after `timeout`.
    func nextFrame() throws -> [String: Any] {
        guard let line = try nextLine() else { throw SocketTestFailure("the host closed the connection while a frame was expected") }
        guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
            throw SocketTestFailure("not a JSON object: \(String(decoding: line, as: UTF8.self))")
        }
        return object
    }

    /// The next line without its newline, or nil at end of stream (or when
    /// the host reset the connection). Throws after `timeout` seconds.
    func nextLine() throws -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<newline])
                start = newline + 1
                if start > 1 << 16 {
                    buffer.removeSubrange(0..<start)
                    start = 0
                }
                return line
            }
            switch readMore() {
            case .some(true): continue
            case .some(false): return nil
            case nil: throw SocketTestFailure("no frame from the host within \(timeout) s")
            }
        }
    }

    /// Reads until end of stream, discarding; true if the stream ended
    /// (rather than timing out).
    func drainUntilClosed() -> Bool {
        while true {
            switch readMore() {
            case .some(true):
                buffer.removeAll(keepingCapacity: true)
                start = 0
            case .some(false): return true
            case nil: return false
            }
        }
    }

    /// One read: true if bytes came, false at end of stream or reset, nil on timeout.
    private func readMore() -> Bool? {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, Int32(timeout * 1000))
        if ready < 0 && errno == EINTR { return true }
        guard ready > 0 else { return nil }
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { return true }
        guard n > 0 else { return false }
        buffer += chunk[0..<n]
        return true
    }
}
