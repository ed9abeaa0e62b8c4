import Glibc

/// `serve --trace FILE`: every frame a session reads and every frame it
/// issues, one JSON line each, as it happens, so a developer can watch live
/// traffic: `{"ts":…,"session":N,"dir":"in"|"out","line":N,"comm_id":…,"frame":"…"}`.
/// `line` (inbound only) is the frame's input line; `comm_id` is the comm
/// the frame names (null when it names none); `frame` is the frame's text
/// as a JSON string. Lines are written whole, from any thread.
public final class FrameTrace: Sendable {
    private let fd: Int32
    private let ownsDescriptor: Bool
    /// Held while a line is written, so lines stay whole when sessions write at once.
    private let lock = ConditionLock()

    /// A trace written to `path`, created (mode 0600) or truncated; `-` is
    /// stderr. Throws the reason it cannot be opened.
    public init(path: String) throws(Errno) {
        if path == "-" {
            fd = STDERR_FILENO
            ownsDescriptor = false
            return
        }
        let opened = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard opened >= 0 else { throw Errno.current }
        fd = opened
        ownsDescriptor = true
    }

    deinit {
        if ownsDescriptor { close(fd) }
    }

    /// Records one frame of session `session`: read (`inbound`, from input
    /// line `line`) or issued toward the client.
    func record(session: Int, inbound: Bool, line: Int? = nil, frame: UnsafeRawBufferPointer) {
        var text = "{\"ts\":\(Self.timestamp()),\"session\":\(session),\"dir\":\"\(inbound ? "in" : "out")\""
        if let line { text += ",\"line\":\(line)" }
        text += ",\"comm_id\":" + (Self.commID(in: frame).map(JSONText.string) ?? "null")
        var body = frame
        if body.last == 0x0A { body = UnsafeRawBufferPointer(rebasing: body.dropLast()) }
        text += ",\"frame\":" + JSONText.string(String(decoding: body, as: UTF8.self)) + "}\n"
        var bytes = Array(text.utf8)
        lock.withLock {
            // A trace that cannot be written has nowhere to report to.
            bytes.withUnsafeMutableBytes { try? FileSystem.writeAll(fd, UnsafeRawBufferPointer($0)) }
        }
    }

    /// Records every line of `frames` (what was just issued).
    func recordIssued(session: Int, frames: UnsafeRawBufferPointer) {
        var start = 0
        while start < frames.count {
            let rest = UnsafeRawBufferPointer(rebasing: frames[start...])
            let end = rest.firstIndex(of: 0x0A).map { $0 + 1 } ?? frames.count
            record(session: session, inbound: false, frame: UnsafeRawBufferPointer(rebasing: frames[start..<end]))
            start = end
        }
    }

    /// Seconds since the epoch, to the microsecond.
    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let micros = String(Int(now.tv_nsec) / 1000)
        return "\(now.tv_sec)." + String(repeating: "0", count: 6 - micros.count) + micros
    }

    /// The comm id a frame names: the value of its first `comm_id` member,
    /// also inside the shinywidgets dialect's escaped message text.
    static func commID(in frame: UnsafeRawBufferPointer) -> String? {
        let key = Array("comm_id".utf8)
        var i = 0
        while i + key.count < frame.count {
            guard frame[i] == key[0], frame[i..<(i + key.count)].elementsEqual(key) else {
                i += 1
                continue
            }
            var j = i + key.count
            // The key's closing quote (maybe escaped), the colon, spaces, the value's opening quote.
            func skip(_ byte: UInt8) -> Bool {
                guard j < frame.count, frame[j] == byte else { return false }
                j += 1
                return true
            }
            _ = skip(0x5C)
            guard skip(0x22) else { i += 1; continue }
            while j < frame.count, frame[j] == 0x20 { j += 1 }
            guard skip(0x3A) else { i += 1; continue }
            while j < frame.count, frame[j] == 0x20 { j += 1 }
            _ = skip(0x5C)
            guard skip(0x22) else { return nil }
            let start = j
            while j < frame.count, frame[j] != 0x22, frame[j] != 0x5C { j += 1 }
            return String(decoding: frame[start..<j], as: UTF8.self)
        }
        return nil
    }
}
