import Glibc

/// What the host logs while a plugin is exercised without a front end
/// (`commhost try`, `inspect --check`), captured to a file and read back as
/// the ABI rules the plugin broke: a send or close after the comm closed, data
/// that is not a JSON object, a failure status without error text, a
/// callback past `handler_timeout_ms`, a handle it does not hold, and any
/// other warning or error the host logged. A failing callback's own lines
/// (its handler error with text, its error frame) are not breaches: the
/// caller reports the step's outcome.
final class RuleWatch: @unchecked Sendable {
    /// A library loaded to be exercised: staged, with everything the host
    /// and the plugin log from now on captured by `watch`.
    struct Exercise {
        let staging: StagingArea
        let watch: RuleWatch
        let library: PluginLibrary

        /// Stages and loads `path` (its init gets `config`), or says why not.
        static func load(path: String, config: [UInt8] = Array("null".utf8)) throws(Refusal) -> Exercise {
            let staging: StagingArea
            do {
                staging = try StagingArea()
            } catch {
                throw Refusal(path: path, reason: "cannot stage the library: \(error)")
            }
            let watch = RuleWatch(directory: staging.directory)
            HostAPI.logger.withLock { $0 = watch.logger }
            do {
                return Exercise(staging: staging, watch: watch,
                                library: try PluginLibrary.load(path: path, staging: staging, config: config, logger: watch.logger))
            } catch {
                staging.removeAll()
                throw Refusal(path: path, reason: error.description)
            }
        }
    }

    /// Why a library could not be loaded to be exercised.
    struct Refusal: Error {
        let path: String
        let reason: String
    }

    // @unchecked: `fd` and `path` are immutable; the file is the shared state.
    let path: String
    private let fd: Int32
    /// Writes to the capture, debug lines included (refused sends are logged at debug).
    let logger: Logger

    init(directory: String) {
        path = directory + "/rules.log"
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        logger = Logger(minimumLevel: .debug, fd: fd)
    }

    deinit {
        close(fd)
    }

    /// Forgets what was logged so far.
    func reset() {
        _ = ftruncate(fd, 0)
        _ = lseek(fd, 0, SEEK_SET)
    }

    /// Each rule broken since `reset`, one line each in the order seen; the
    /// same breach twice is one line with its count.
    func breaches() -> [String] {
        guard case .success(let bytes) = FileSystem.readFile(path) else { return [] }
        var counted: [(String, Int)] = []
        for line in bytes.split(separator: 0x0A) {
            guard let document = try? JSONDocument(parsing: Array(line)), let breach = Self.breach(document.root) else { continue }
            if let index = counted.firstIndex(where: { $0.0 == breach }) { counted[index].1 += 1 } else { counted.append((breach, 1)) }
        }
        return counted.map { $0.1 == 1 ? $0.0 : "\($0.0) (\($0.1) times)" }
    }

    /// The rule one log line shows broken, or nil.
    private static func breach(_ line: JSONDocument.Node) -> String? {
        let text = { (key: String) in line[key]?.stringValue ?? "" }
        let message = text("msg"), level = text("level")
        switch message {
        case "handler error":
            guard text("error").isEmpty else { return nil }
            return "\(text("step")) returned a failure status (\(line["status"]?.intValue ?? 0)) without error text (call set_error before returning it)"
        case "bad input; answered with an error frame" where text("ename") == "HandlerError":
            return nil
        case let refused where refused.hasPrefix("a plugin's ") && refused.hasSuffix(" was refused"):
            let call = String(refused.dropFirst("a plugin's ".count).dropLast(" was refused".count))
            let comm = text("comm_id").isEmpty ? "" : " on comm \(JSONText.string(text("comm_id")))"
            let reason = text("error").isEmpty ? "" : ": \(text("error"))"
            switch text("status") {
            case "COMMHOST_ECLOSED": return "\(call) after the comm closed\(comm) (COMMHOST_ECLOSED\(reason))"
            case "COMMHOST_EJSON": return "\(call) with data or metadata that is not a JSON object\(comm) (COMMHOST_EJSON\(reason))"
            case let status: return "\(call) refused\(comm) (\(status)\(reason))"
            }
        case let slow where slow.hasPrefix("an in-process callback ran longer than handler_timeout_ms"):
            return "\(text("callback")) for comm \(JSONText.string(text("comm_id"))) blocked \(line["elapsed_ms"]?.intValue ?? 0) ms, longer than handler_timeout_ms (\(line["handler_timeout_ms"]?.intValue ?? 0) ms)"
        default:
            guard level == "warning" || level == "error", case .object(let members) = line.value else { return nil }
            let fields = members.compactMap { member -> String? in
                switch (member.key, member.value.value) {
                case ("ts", _), ("level", _), ("msg", _): return nil
                case (let key, .string(let value)): return "\(key): \(value)"
                case (let key, .number(let value)): return "\(key): \(value)"
                case (let key, .bool(let value)): return "\(key): \(value)"
                case (let key, _): return key
                }
            }
            return fields.isEmpty ? message : "\(message) (\(fields.joined(separator: ", ")))"
        }
    }
}
