import Foundation
import XCTest

/// A real `commhost` process with its stdin, stdout and stderr on pipes:
/// send frames, read frames and JSON log lines, signal it, end its input.
/// Timeouts are safety nets against a hung process, never speed checks.
final class HostProcess: @unchecked Sendable {
    // @unchecked: the line buffers are guarded by `condition`.
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private let condition = NSCondition()
    private var frames: [String] = []
    private var logs: [String] = []
    private var logCursor = 0
    private var outputEnded = false

    /// Starts `commhost` with `arguments`.
    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: TestSupport.commhostBinary)
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        startReading(output.fileHandleForReading, isLog: false)
        startReading(errors.fileHandleForReading, isLog: true)
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    private func startReading(_ handle: FileHandle, isLog: Bool) {
        let thread = Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0a) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    condition.lock()
                    if isLog { logs.append(line) } else { frames.append(line) }
                    condition.broadcast()
                    condition.unlock()
                }
            }
            condition.lock()
            if !isLog { outputEnded = true }
            condition.broadcast()
            condition.unlock()
        }
        thread.start()
    }

    /// Writes one frame (a line) to the host's stdin.
    func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Writes one frame built from a JSON object.
    func send(json object: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: object)
        send(String(decoding: data, as: UTF8.self))
    }

    /// The next stdout line, raw.
    func nextLine(timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while frames.isEmpty {
            if outputEnded || !condition.wait(until: deadline) {
                let why = outputEnded ? "stdout ended" : "no frame within \(timeout) s"
                throw HostProcessError("\(why); stderr:\n\(logs.joined(separator: "\n"))")
            }
        }
        return frames.removeFirst()
    }

    /// The next stdout frame, parsed.
    func nextFrame(timeout: TimeInterval = 10) throws -> [String: Any] {
        let text = try nextLine(timeout: timeout)
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw HostProcessError("stdout line is not a JSON object: \(text)")
        }
        return object
    }

    /// Waits for the next stderr log line (after those already matched) whose
    /// `msg` contains `message`, and returns it parsed.
    @discardableResult
    func waitForLog(_ message: String, timeout: TimeInterval = 15) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            while logCursor < logs.count {
                let line = logs[logCursor]
                logCursor += 1
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                   (object["msg"] as? String)?.contains(message) == true {
                    return object
                }
            }
            if !condition.wait(until: deadline) {
                throw HostProcessError("no log line with \"\(message)\" within \(timeout) s; stderr:\n\(logs.joined(separator: "\n"))")
            }
        }
    }

    /// Every stderr line so far.
    var logLines: [String] {
        condition.lock()
        defer { condition.unlock() }
        return logs
    }

    /// Sends `signal` to the process.
    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Closes the host's stdin (end of input).
    func closeInput() {
        try? input.fileHandleForWriting.close()
    }

    /// Waits for the process to exit and returns its status.
    func waitForExit(timeout: TimeInterval = 15) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                throw HostProcessError("commhost did not exit within \(timeout) s")
            }
            usleep(10_000)
        }
        return process.terminationStatus
    }
}

/// A failure of the process harness, with what it saw.
struct HostProcessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
