#if canImport(Glibc)
import Glibc
#endif

/// Appending JSON text to a byte array, either as it stands (`.plain`) or as the contents of a
/// JSON string (`.nested`, for documents carried inside another document's string value, as
/// the `shinywidgets` dialect's `message` is).
///
/// Every writer takes the nesting level, so one piece of code writes both dialects.
enum JSONOutput {
    /// Where the text being written ends up.
    enum Level {
        /// Directly in the frame.
        case plain
        /// Inside a JSON string in the frame: everything is escaped once more.
        case nested
    }

    /// Appends ASCII structural text such as `{"content":{"data":`.
    @inline(__always)
    static func structure(_ text: StaticString, _ level: Level, to out: inout [UInt8]) {
        let bytes = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        if level == .plain {
            out.append(contentsOf: bytes)
        } else {
            escape(bytes, times: 1, to: &out)
        }
    }

    /// Appends JSON text that is already known to be valid (a plugin's `data`, a raw message id
    /// token). At the plain level, line breaks between tokens become spaces so the text cannot
    /// split a frame; valid JSON has no raw line break inside a string, so no value changes.
    static func json(_ text: UnsafeRawBufferPointer, _ level: Level, to out: inout [UInt8]) {
        guard level == .plain else {
            escape(text, times: 1, to: &out)
            return
        }
        let start = out.count
        out.append(contentsOf: text)
        guard let base = text.baseAddress, text.count > 0,
              memchr(base, 0x0A, text.count) != nil || memchr(base, 0x0D, text.count) != nil else { return }
        out.withUnsafeMutableBufferPointer { buffer in
            for i in start..<buffer.count where buffer[i] == 0x0A || buffer[i] == 0x0D {
                buffer[i] = 0x20
            }
        }
    }

    /// Appends `{}` if `text` is empty, else ``json(_:_:to:)``.
    @inline(__always)
    static func object(_ text: UnsafeRawBufferPointer, _ level: Level, to out: inout [UInt8]) {
        if text.isEmpty {
            structure("{}", level, to: &out)
        } else {
            json(text, level, to: &out)
        }
    }

    /// Appends a JSON string value holding the UTF-8 bytes `text`, quotes included.
    static func string(_ text: UnsafeRawBufferPointer, _ level: Level, to out: inout [UInt8]) {
        structure("\"", level, to: &out)
        escape(text, times: level == .plain ? 1 : 2, to: &out)
        structure("\"", level, to: &out)
    }

    /// Appends a JSON string value holding `text`, quotes included.
    static func string(_ text: String, _ level: Level, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { string(UnsafeRawBufferPointer($0), level, to: &out) }
    }

    /// Appends a non-negative integer in decimal.
    static func integer(_ value: UInt64, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var v = value
        var n = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - n] = UInt8(truncatingIfNeeded: v % 10) + UInt8(ascii: "0")
                v /= 10
                n += 1
            } while v > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[(20 - n)..<20]))
        }
    }

    /// Appends a signed integer in decimal.
    static func integer(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        integer(UInt64(value.magnitude), to: &out)
    }

    /// Appends `bytes` escaped as the contents of a JSON string `times` times over (1: once,
    /// 2: the result escaped again; nothing deeper is needed). Runs that need no escaping are copied in one go.
    static func escape(_ bytes: UnsafeRawBufferPointer, times: Int, to out: inout [UInt8]) {
        var runStart = 0
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b >= 0x20 && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") {
                i += 1
                continue
            }
            if runStart < i { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])) }
            appendEscape(of: b, twice: times == 2, to: &out)
            i += 1
            runStart = i
        }
        if runStart < n { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<n])) }
    }

    /// The JSON escape sequence of one byte that cannot stand in a string as it is; `twice`:
    /// that sequence escaped again (`"` -> `\"` -> `\\\"`).
    private static func appendEscape(of b: UInt8, twice: Bool, to out: inout [UInt8]) {
        let backslash = UInt8(ascii: "\\")
        out.append(backslash)
        if twice { out.append(backslash) }
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            if twice { out.append(backslash) }
            out.append(b)
        case 0x08: out.append(UInt8(ascii: "b"))
        case 0x0C: out.append(UInt8(ascii: "f"))
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "t"))
        default:
            let hex: StaticString = "0123456789abcdef"
            out.append(UInt8(ascii: "u"))
            out.append(UInt8(ascii: "0"))
            out.append(UInt8(ascii: "0"))
            out.append(hex.utf8Start[Int(b >> 4)])
            out.append(hex.utf8Start[Int(b & 15)])
        }
    }
}
