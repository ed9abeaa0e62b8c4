import Foundation
import Glibc
import Synchronization
import XCTest

/// A running `commhost serve` process driven over real pipes: the test writes
/// frames to its stdin, a reader thread collects its stdout line by line and
/// another its stderr.
///
/// Every wait has a generous timeout (10 s by default) that is a safety net,
/// never an assertion about speed: on timeout the test fails with what the
/// host wrote on stderr. `finish()` closes stdin, waits for the exit and
/// checks the two output rules of `serve`: stdout holds only frames, stderr
/// only JSON log lines.
final class ServeHarness: Sendable {
    /// Why a wait ended without what it waited for (the test has already
    /// been failed with the details).
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The process id of the host.
    let pid: Int32
    /// The arguments the host was started with.
    let arguments: [String]

    private let inputFD: Int32
    private let inputHandle: FileHandle
    private let collected = Collected()

    /// What the reader threads and the termination handler collect.
    private final class Collected: @unchecked Sendable {
        // @unchecked: every property is read and written only while holding `lock`.
        let lock = NSCondition()
        var stdoutLines: [Data] = []
        var partialLine = Data()
        var nextIndex = 0
        var stdoutEnded = false
        var stderrBytes = Data()
        var stderrEnded = false
        var exited = false
        var exitStatus: Int32 = -1
        var exitedBySignal = false
        var inputClosed = false
        var syncCounter = 0
        /// How many stderr bytes `waitForLog` has already looked at.
        var logCursor = 0

        /// Splits `chunk` into stdout lines.
        func appendStdout(_ chunk: Data) {
            var rest = chunk[...]
            while let newline = rest.firstIndex(of: 0x0A) {
                partialLine.append(rest[rest.startIndex..<newline])
                stdoutLines.append(partialLine)
                partialLine = Data()
                rest = rest[(newline + 1)...]
            }
            partialLine.append(rest)
        }

        var stderrText: String { String(decoding: stderrBytes, as: UTF8.self) }
    }

    /// Starts `commhost` (or another build of it, `executable`) with
    /// `arguments` (e.g. `["serve", "--manifest", path]`).
    /// With `readsOutput` false the read end of its stdout is closed at once,
    /// so the host's first write fails (a client that went away). The
    /// process is killed when the test ends if it is still running.
    init(_ test: XCTestCase, executable: String = TestSupport.commhostBinary, arguments: [String], readsOutput: Bool = true) throws {
        // A write to a host that has exited must fail with EPIPE, not kill the test runner.
        Glibc.signal(SIGPIPE, SIG_IGN)
        self.arguments = arguments
        let process = Process()
        let inputPipe = Pipe(), outputPipe = Pipe(), errorPipe = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: TestSupport.repoRoot)
        process.standardInput = inputPipe
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        inputHandle = inputPipe.fileHandleForWriting
        inputFD = inputHandle.fileDescriptor
        let collected = collected
        process.terminationHandler = { finished in
            collected.lock.lock()
            collected.exited = true
            collected.exitStatus = finished.terminationStatus
            collected.exitedBySignal = finished.terminationReason == .uncaughtSignal
            collected.lock.broadcast()
            collected.lock.unlock()
        }
        try process.run()
        let pid = process.processIdentifier
        self.pid = pid

        if readsOutput {
            Self.startReader(fd: outputPipe.fileHandleForReading.fileDescriptor, name: "stdout", collected) { c, chunk in
                if let chunk { c.appendStdout(chunk) } else { c.stdoutEnded = true }
            }
        } else {
            try outputPipe.fileHandleForReading.close()
            collected.stdoutEnded = true
        }
        Self.startReader(fd: errorPipe.fileHandleForReading.fileDescriptor, name: "stderr", collected) { c, chunk in
            if let chunk { c.stderrBytes.append(chunk) } else { c.stderrEnded = true }
        }
        test.addTeardownBlock { [self] in
            collected.lock.lock()
            let running = !collected.exited
            collected.lock.unlock()
            if running { kill(pid, SIGKILL) }
            closeInput()
            // Keeps the pipes (and so the readers' descriptors) open until the test is over.
            withExtendedLifetime((process, outputPipe, errorPipe)) {}
        }
    }

    /// Reads `fd` until end of file on a thread of its own, handing each
    /// chunk (then nil at the end) to `take` while holding the lock.
    private static func startReader(fd: Int32, name: String, _ collected: Collected,
                                    take: @escaping @Sendable (Collected, Data?) -> Void) {
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n < 0 && errno == EINTR { continue }
                collected.lock.lock()
                take(collected, n > 0 ? Data(buffer[0..<n]) : nil)
                collected.lock.broadcast()
                collected.lock.unlock()
                if n <= 0 { return }
            }
        }
        thread.name = "serve-harness-\(name)"
        thread.start()
    }

    // MARK: Input

    /// Writes `line` and a newline to the host's stdin.
    func send(_ line: String, file: StaticString = #filePath, line callLine: UInt = #line) {
        send(bytes: Data(line.utf8), file: file, line: callLine)
    }

    /// Writes raw `bytes` (any bytes, valid UTF-8 or not) and a newline.
    func send(bytes: Data, file: StaticString = #filePath, line: UInt = #line) {
        var framed = bytes
        framed.append(0x0A)
        write(framed, file: file, line: line)
    }

    /// Writes `object` serialized as one JSON line.
    func send(json object: [String: Any], file: StaticString = #filePath, line: UInt = #line) {
        send(bytes: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), file: file, line: line)
    }

    /// Writes raw bytes with no newline added. A write to a host that has
    /// exited fails the test.
    func write(_ bytes: Data, file: StaticString = #filePath, line: UInt = #line) {
        let failed: Int32? = bytes.withUnsafeBytes { raw -> Int32? in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(inputFD, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return errno }
                offset += n
            }
            return nil
        }
        if let failed {
            XCTFail("writing to commhost's stdin failed: \(String(cString: strerror(failed))); stderr:\n\(stderrText)",
                    file: file, line: line)
        }
    }

    /// Closes the host's stdin: end of input.
    func closeInput() {
        collected.lock.lock()
        defer { collected.lock.unlock() }
        guard !collected.inputClosed else { return }
        collected.inputClosed = true
        try? inputHandle.close()
    }

    /// Sends `number` (SIGINT, SIGTERM) to the host.
    func signal(_ number: Int32) {
        kill(pid, number)
    }

    /// The value of `field` in /proc/PID/status (read whole: String(contentsOfFile:)
    /// truncates /proc files).
    static func procStatusField(_ field: String, pid: Int32) -> String? {
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/status") else { return nil }
        defer { try? handle.close() }
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        guard let row = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
        return row.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)
    }

    // MARK: Output

    /// The next stdout line, without its newline, byte for byte.
    func nextLine(timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line) throws -> Data {
        let deadline = Date(timeIntervalSinceNow: timeout)
        let c = collected
        c.lock.lock()
        defer { c.lock.unlock() }
        while c.nextIndex >= c.stdoutLines.count {
            if c.stdoutEnded {
                throw failLocked("stdout ended while a frame was expected", file: file, line: line)
            }
            if !c.lock.wait(until: deadline) {
                throw failLocked("no frame within \(timeout) s", file: file, line: line)
            }
        }
        defer { c.nextIndex += 1 }
        return c.stdoutLines[c.nextIndex]
    }

    /// The next stdout line parsed as a JSON object; fails the test when it
    /// is not one.
    func nextFrame(timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let bytes = try nextLine(timeout: timeout, file: file, line: line)
        guard let object = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any] else {
            XCTFail("stdout line is not a JSON object: \(String(decoding: bytes, as: UTF8.self))", file: file, line: line)
            throw Failure(description: "not a frame")
        }
        return object
    }

    /// The next `count` frames.
    func nextFrames(_ count: Int, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        try (0..<count).map { _ in try nextFrame(file: file, line: line) }
    }

    /// A sync point: sends a `comm_info_request` and returns its reply, which
    /// must be the very next frame. Output is ordered, so this proves that
    /// every frame sent before it has been handled and that handling them
    /// wrote nothing not yet read.
    @discardableResult
    func sync(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let id: String = collected.lock.withLock {
            collected.syncCounter += 1
            return "sync-\(collected.syncCounter)"
        }
        send(Frame.infoRequest(msgID: id), file: file, line: line)
        let reply = try nextFrame(file: file, line: line)
        guard reply.msgType == "comm_info_reply", reply.parentMsgID == id else {
            XCTFail("expected the comm_info_reply to \(id), got \(Self.text(reply))", file: file, line: line)
            throw Failure(description: "sync")
        }
        return reply
    }

    /// The ids listed in a sync point's `comm_info_reply`, sorted.
    func openCommIDs(file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        let reply = try sync(file: file, line: line)
        return ((reply.content["comms"] as? [String: Any]) ?? [:]).keys.sorted()
    }

    /// Waits for the host to exit (and both output streams to end) and
    /// returns its exit status; fails the test (and returns -1) when it does
    /// not exit in time or dies of a signal.
    @discardableResult
    func waitForExit(timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line) -> Int32 {
        let deadline = Date(timeIntervalSinceNow: timeout)
        let c = collected
        c.lock.lock()
        defer { c.lock.unlock() }
        while !c.exited || !c.stdoutEnded || !c.stderrEnded {
            if !c.lock.wait(until: deadline) {
                XCTFail("commhost did not exit within \(timeout) s; stderr:\n\(c.stderrText)", file: file, line: line)
                return -1
            }
        }
        if c.exitedBySignal {
            XCTFail("commhost died of signal \(c.exitStatus); stderr:\n\(c.stderrText)", file: file, line: line)
            return -1
        }
        return c.exitStatus
    }

    /// Ends the session the normal way: closes stdin, waits for the exit,
    /// asserts exit status 0 and the output rules (`assertOutputRules`).
    /// Returns the frames not yet read.
    @discardableResult
    func finish(file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        closeInput()
        let status = waitForExit(file: file, line: line)
        XCTAssertEqual(status, 0, "commhost exit status; stderr:\n\(stderrText)", file: file, line: line)
        assertOutputRules(file: file, line: line)
        return unreadFrames()
    }

    /// The frames written and not yet read, without waiting.
    func unreadFrames() -> [[String: Any]] {
        collected.lock.withLock {
            collected.stdoutLines[collected.nextIndex...].compactMap { (try? JSONSerialization.jsonObject(with: $0)) as? [String: Any] }
        }
    }

    /// Asserts the output rules of `serve`: stdout holds only frames (JSON
    /// objects with `msg_type`, or the shinywidgets `{"type","message"}`),
    /// each ending in a newline, and stderr only JSON log records (objects
    /// with `ts`, `level` and `msg`), one per line.
    func assertOutputRules(file: StaticString = #filePath, line: UInt = #line) {
        let (out, partial, err) = collected.lock.withLock { (collected.stdoutLines, collected.partialLine, collected.stderrBytes) }
        XCTAssertTrue(partial.isEmpty, "stdout ends inside a line: \(String(decoding: partial, as: UTF8.self))", file: file, line: line)
        for bytes in out {
            let object = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any]
            let isFrame = object?["msg_type"] is String || (object?["type"] is String && object?["message"] is String)
            XCTAssertTrue(isFrame, "stdout line is not a frame: \(String(decoding: bytes, as: UTF8.self))", file: file, line: line)
        }
        XCTAssertTrue(err.isEmpty || err.last == 0x0A, "stderr ends inside a line", file: file, line: line)
        for record in err.split(separator: 0x0A) {
            let object = (try? JSONSerialization.jsonObject(with: Data(record))) as? [String: Any]
            XCTAssertTrue(object?["level"] is String && object?["msg"] is String && object?["ts"] != nil,
                          "stderr line is not a JSON log record: \(String(decoding: record, as: UTF8.self))", file: file, line: line)
        }
    }

    /// Every stderr line that is a JSON object, parsed (`assertOutputRules`
    /// reports the lines that are not).
    var stderrLines: [[String: Any]] {
        let err = collected.lock.withLock { collected.stderrBytes }
        return err.split(separator: 0x0A).compactMap { (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] }
    }

    /// Waits for the next stderr log record (after those earlier calls
    /// matched) whose `msg` contains `message`, and returns it.
    @discardableResult
    func waitForLog(_ message: String, timeout: TimeInterval = 15, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let c = collected
        let deadline = Date(timeIntervalSinceNow: timeout)
        c.lock.lock()
        defer { c.lock.unlock() }
        while true {
            while let newline = c.stderrBytes[(c.stderrBytes.startIndex + c.logCursor)...].firstIndex(of: 0x0A) {
                let record = c.stderrBytes[(c.stderrBytes.startIndex + c.logCursor)..<newline]
                c.logCursor = newline + 1 - c.stderrBytes.startIndex
                if let object = (try? JSONSerialization.jsonObject(with: Data(record))) as? [String: Any],
                   (object["msg"] as? String)?.contains(message) == true {
                    return object
                }
            }
            if c.stderrEnded || !c.lock.wait(until: deadline) {
                throw failLocked("no log record with \"\(message)\" within \(timeout) s", file: file, line: line)
            }
        }
    }

    /// What the host has written on stderr so far.
    var stderrText: String { collected.lock.withLock { collected.stderrText } }

    /// Called holding the lock: fails the test with `message`, the unread
    /// frames and stderr, and returns the error to throw.
    private func failLocked(_ message: String, file: StaticString, line: UInt) -> Failure {
        let c = collected
        let unread = c.stdoutLines[c.nextIndex...].map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
        XCTFail("\(message) (commhost \(arguments.joined(separator: " ")))\nunread stdout:\n\(unread)\nstderr:\n\(c.stderrText)",
                file: file, line: line)
        return Failure(description: message)
    }

    /// `object` as compact JSON text with sorted keys, for messages and comparisons.
    static func text(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]) else {
            return "\(object)"
        }
        return String(decoding: data, as: UTF8.self)
    }
}

// MARK: - Frames to send

/// Inbound frames in the jupyter dialect, built as text so that `data` and
/// `metadata` go out exactly as written.
enum Frame {
    /// `comm_open` of `id` on `target` with `data` (JSON object text).
    static func open(_ id: String, target: String, data: String = "{}", msgID: String? = nil) -> String {
        "{\"msg_type\":\"comm_open\"\(header(msgID)),\"content\":{\"comm_id\":\(quoted(id)),\"target_name\":\(quoted(target)),\"data\":\(data)}}"
    }

    /// `comm_msg` on `id` with `data`, and `metadata`/`buffers` (JSON text) when given.
    static func msg(_ id: String, data: String, msgID: String? = nil, metadata: String? = nil, buffers: String? = nil) -> String {
        var text = "{\"msg_type\":\"comm_msg\"\(header(msgID)),\"content\":{\"comm_id\":\(quoted(id)),\"data\":\(data)}"
        if let metadata { text += ",\"metadata\":\(metadata)" }
        if let buffers { text += ",\"buffers\":\(buffers)" }
        return text + "}"
    }

    /// `comm_close` of `id` with `data`.
    static func close(_ id: String, data: String = "{}", msgID: String? = nil) -> String {
        "{\"msg_type\":\"comm_close\"\(header(msgID)),\"content\":{\"comm_id\":\(quoted(id)),\"data\":\(data)}}"
    }

    /// `comm_info_request`, filtered by `target` when given.
    static func infoRequest(target: String? = nil, msgID: String? = nil) -> String {
        let content = target.map { "{\"target_name\":\(quoted($0))}" } ?? "{}"
        return "{\"msg_type\":\"comm_info_request\"\(header(msgID)),\"content\":\(content)}"
    }

    private static func header(_ msgID: String?) -> String {
        msgID.map { ",\"header\":{\"msg_id\":\(quoted($0))}" } ?? ""
    }

    /// `text` as a JSON string (quotes, backslashes and control characters escaped).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

// MARK: - Reading frames

extension Dictionary where Key == String, Value == Any {
    /// `msg_type` of a jupyter-form frame.
    var msgType: String? { self["msg_type"] as? String }
    /// `content`, or empty when absent.
    var content: [String: Any] { self["content"] as? [String: Any] ?? [:] }
    /// `content.comm_id`.
    var commID: String? { content["comm_id"] as? String }
    /// `content.data`.
    var data: [String: Any]? { content["data"] as? [String: Any] }
    /// `parent_header.msg_id`, nil when the parent header is `{}`.
    var parentMsgID: String? { (self["parent_header"] as? [String: Any])?["msg_id"] as? String }
}

/// Asserts that `value` is the JSON value written in `expected` (compared as
/// JSON values: key order and spacing do not matter).
func assertJSON(_ value: Any?, _ expected: String, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard let value else {
        XCTFail("expected \(expected), got nothing. \(message)", file: file, line: line)
        return
    }
    let want = try! JSONSerialization.jsonObject(with: Data(expected.utf8), options: [.fragmentsAllowed])
    XCTAssertEqual(ServeHarness.text(value), ServeHarness.text(want), message, file: file, line: line)
}

/// Asserts that `frame` is a `msgType` frame for comm `commID`.
func assertFrame(_ frame: [String: Any], _ msgType: String, comm commID: String? = nil,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(frame.msgType, msgType, "frame: \(ServeHarness.text(frame))", file: file, line: line)
    if let commID {
        XCTAssertEqual(frame.commID, commID, "frame: \(ServeHarness.text(frame))", file: file, line: line)
    }
}

// MARK: - The probe plugin and manifests

/// The probe plugin (Fixtures/probe_plugin.c), compiled once per test
/// process, and manifests that serve it beside the example plugins.
enum ServeFixture {
    private static let built = Mutex<String?>(nil)

    /// The private (0700) folder holding the compiled `libprobe.so`.
    static func probeDirectory() throws -> String {
        try built.withLock { path in
            if let path { return path }
            let directory = NSTemporaryDirectory() + "commhost-serve-probe-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            try TestSupport.compileC(source: TestSupport.fixture("probe_plugin.c"), output: directory + "/libprobe.so",
                                     flags: ["-lpthread"])
            chmod(directory + "/libprobe.so", 0o755)
            path = directory
            return directory
        }
    }

    /// Removes the compiled probe (call from a test class's `tearDown()`).
    static func removeProbe() {
        built.withLock { path in
            if let path { try? FileManager.default.removeItem(atPath: path) }
            path = nil
        }
    }

    /// A manifest in a fresh private folder binding `probe.target` (handler
    /// `probe`, with an events file and the members `config` adds to its
    /// config, e.g. `"open_on_start": true`), `commhost.echo` and
    /// `commhost.counter`, with `limits` (manifest keys) when given.
    static func setUp(_ test: XCTestCase, limits: [String: Int] = [:], config: String = "") throws -> ProbeSetup {
        let directory = try TestSupport.temporaryDirectory(test)
        let events = directory + "/events.log"
        // Written by hand: JSONSerialization would escape "/" as "\/", and the
        // probe reads the events path from its config text without unescaping.
        let limitsText = limits.sorted { $0.key < $1.key }.map { "\(Frame.quoted($0.key)): \($0.value)" }.joined(separator: ", ")
        let manifest = """
            {
              "version": 1,
              "plugin_paths": [\(Frame.quoted(try probeDirectory()))],
              "targets": [
                {"target_name": "probe.target", "library": "libprobe.so", "handler": "probe",
                 "config": {"events_file": \(Frame.quoted(events))\(config.isEmpty ? "" : ", " + config)}},
                {"target_name": "commhost.echo", "library": "libEchoPlugin.so", "handler": "echo"},
                {"target_name": "commhost.counter", "library": "libCounterPlugin.so", "handler": "counter"}
              ]\(limits.isEmpty ? "" : ",\n  \"limits\": {\(limitsText)}")
            }
            """
        let path = directory + "/commhost.json"
        try Data(manifest.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return ProbeSetup(manifestPath: path, eventsPath: events)
    }
}

/// A manifest serving the probe, and where the probe writes its events.
struct ProbeSetup {
    /// The manifest file.
    var manifestPath: String
    /// The probe's events file: one event per line (`open <id> 0`,
    /// `close <id> <cause>`, `deinit`, ...).
    var eventsPath: String

    /// Starts `commhost serve` with this manifest and `extra` arguments.
    func serve(_ test: XCTestCase, _ extra: [String] = [], readsOutput: Bool = true) throws -> ServeHarness {
        try ServeHarness(test, arguments: ["serve", "--manifest", manifestPath] + extra, readsOutput: readsOutput)
    }

    /// The events recorded so far, in order.
    func events() -> [String] {
        guard let data = FileManager.default.contents(atPath: eventsPath) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The recorded events that start with `prefix` (e.g. `"close "`).
    func events(startingWith prefix: String) -> [String] {
        events().filter { $0.hasPrefix(prefix) }
    }

    /// Waits until `event` has been recorded (for events recorded on threads
    /// the test cannot sync with); fails the test after `timeout`.
    func waitForEvent(_ event: String, timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !events().contains(event) {
            if Date() > deadline {
                XCTFail("event \"\(event)\" not recorded within \(timeout) s; events: \(events())", file: file, line: line)
                return
            }
            usleep(5_000)
        }
    }
}

/// The default manifest of the repository (echo and counter).
let defaultManifest = TestSupport.repoRoot + "/manifest/commhost.json"

/// The cause numbers of `commhost_close_cause`.
enum Cause {
    static let client = 1, plugin = 2, sessionEnded = 3, shutdown = 4
}
