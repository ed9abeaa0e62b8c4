import Glibc

/// Severity of a log line, in increasing order.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug = 0, info, warning, error

    /// The name used on the command line and in the `level` field of each line.
    public var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }

    /// Parses `debug`, `info`, `warning` (or `warn`), `error`.
    public init?(name: String) {
        switch name {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// A value in a log line's fields.
public enum LogValue: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
}

/// Writes one JSON object per line to a file descriptor (stderr by default):
/// `{"ts":…,"level":…,"msg":…, fields…}`. Never writes to stdout, which
/// belongs to the wire. Safe to use from any thread: each line is one
/// `write(2)` call.
public struct Logger: Sendable {
    /// Lines below this level are dropped.
    public var minimumLevel: LogLevel
    private let fd: Int32?

    /// A logger writing to `fd` (stderr unless told otherwise).
    public init(minimumLevel: LogLevel = .info, fd: Int32 = STDERR_FILENO) {
        self.minimumLevel = minimumLevel
        self.fd = fd
    }

    private init(discarding: Void) {
        minimumLevel = .error
        fd = nil
    }

    /// A logger that writes nothing (for tests and throwaway checks).
    public static let discard = Logger(discarding: ())

    /// Writes `message` with `fields` when `level` is enabled.
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, LogValue)] = []) {
        guard let fd, level >= minimumLevel else { return }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var line = "{\"ts\":\(ts.tv_sec).\(String(ts.tv_nsec / 1_000_000 + 1000).dropFirst()),\"level\":\"\(level.name)\",\"msg\":"
        JSONText.appendString(message(), to: &line)
        for (key, value) in fields() {
            line += ","
            JSONText.appendString(key, to: &line)
            line += ":"
            switch value {
            case .string(let s): JSONText.appendString(s, to: &line)
            case .int(let i): line += String(i)
            case .double(let d): line += d.isFinite ? String(d) : "null"
            case .bool(let b): line += b ? "true" : "false"
            }
        }
        line += "}\n"
        // A log line that cannot be written has nowhere else to go.
        line.withUTF8 { try? FileSystem.writeAll(fd, UnsafeRawBufferPointer($0)) }
    }

    /// Shorthand for `log(.debug, …)`.
    public func debug(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, LogValue)] = []) { log(.debug, message(), fields()) }
    /// Shorthand for `log(.info, …)`.
    public func info(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, LogValue)] = []) { log(.info, message(), fields()) }
    /// Shorthand for `log(.warning, …)`.
    public func warning(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, LogValue)] = []) { log(.warning, message(), fields()) }
    /// Shorthand for `log(.error, …)`.
    public func error(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, LogValue)] = []) { log(.error, message(), fields()) }
}
