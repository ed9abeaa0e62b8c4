/// Base64 (RFC 4648 section 4, standard alphabet, padded) for the binary
/// leaves of a saved ``WidgetState``: the host's codec lives in CommHost,
/// which the kit does not link, and saved state is small and written once
/// per reload, so a plain loop serves.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// The padded base64 text of `bytes`.
    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] {
                out.append(alphabet[Int(group >> UInt32(shift) & 63)])
            }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            let group = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out.append(alphabet[Int(group >> 18 & 63)])
            out.append(alphabet[Int(group >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(group >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of padded base64 `text`, or a reason it is not: a length
    /// that is not a multiple of 4, a character outside the alphabet (no
    /// whitespace), padding anywhere but at the end, or bits set in the
    /// padding.
    static func decode(_ text: String) -> Result<[UInt8], Problem> {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else {
            return .failure(Problem(text: "its length \(chars.count) is not a multiple of 4"))
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 4 * 3)
        var index = 0
        while index < chars.count {
            var group: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let char = chars[index + offset]
                let last = index + 4 == chars.count
                if char == UInt8(ascii: "="), last, offset >= 2, offset == 3 || chars[index + 3] == UInt8(ascii: "=") {
                    padding += 1
                    group <<= 6
                    continue
                }
                guard padding == 0, let value = Self.value(of: char) else {
                    return .failure(Problem(text: "\(Self.describe(char)) at offset \(index + offset) is not "
                        + "a base64 character here"))
                }
                group = group << 6 | UInt32(value)
            }
            let kept = 3 - padding
            guard group & ((1 << (8 * UInt32(padding))) - 1) == 0 else {
                return .failure(Problem(text: "the last group has bits set that its padding drops"))
            }
            for byte in 0..<kept {
                out.append(UInt8(truncatingIfNeeded: group >> UInt32(16 - 8 * byte)))
            }
            index += 4
        }
        return .success(out)
    }

    /// Why text is not base64.
    struct Problem: Error {
        var text: String
    }

    private static func value(of char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): char - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): char - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): char - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    private static func describe(_ char: UInt8) -> String {
        char >= 0x21 && char < 0x7F ? "'\(Character(Unicode.Scalar(char)))'" : "byte \(char)"
    }
}
