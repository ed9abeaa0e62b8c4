/// Base64 as the wire carries comm buffers: RFC 4648 section 4 (standard alphabet `A-Z a-z 0-9
/// + /`), always padded with `=` to a multiple of four characters.
///
/// Decoding is strict, so every byte string has exactly one accepted text: no whitespace or line
/// breaks, no URL-safe alphabet, no missing or misplaced padding, and the unused low bits of the
/// last character before padding must be zero (`QR==` is refused; `QQ==` is the one spelling of
/// `"A"`). The encoders front ends use (`btoa`, Python's `b64encode`) always produce that form.
public enum Base64 {
    /// Why a text is not strict base64, and where.
    public struct DecodingError: Error, Equatable, Sendable, CustomStringConvertible {
        /// 0-based offset of the offending character in the text (the text's length when the
        /// problem is its length).
        public var offset: Int
        /// What is wrong, for a person.
        public var reason: String

        /// An error at `offset`.
        public init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }

        /// `reason` (which names the offset).
        public var description: String { reason }
    }

    /// Length of the base64 text for `byteCount` bytes.
    @inline(__always)
    public static func encodedCount(of byteCount: Int) -> Int { (byteCount + 2) / 3 * 4 }

    /// Appends the padded base64 text of `bytes` to `out`.
    public static func encode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let n = encodedCount(of: bytes.count)
        guard n > 0 else { return }
        out.append(addingCapacity: n) { span in
            span.withUnsafeMutableBufferPointer { buffer, initialized in
                initialized += encode(bytes, to: buffer.baseAddress! + initialized)
            }
        }
    }

    /// Writes the padded base64 text of `bytes` at `dst`, which has room for
    /// ``encodedCount(of:)`` bytes; returns that count.
    static func encode(_ bytes: UnsafeRawBufferPointer, to dst: UnsafeMutablePointer<UInt8>) -> Int {
        let n = bytes.count
        guard n > 0, let src = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        encodeAlphabet.withUnsafeBufferPointer { table in
            let alphabet = table.baseAddress!
            var i = 0
            var o = 0
            while i + 3 <= n {
                let v = UInt32(src[i]) << 16 | UInt32(src[i + 1]) << 8 | UInt32(src[i + 2])
                dst[o] = alphabet[Int(v >> 18)]
                dst[o + 1] = alphabet[Int(v >> 12 & 63)]
                dst[o + 2] = alphabet[Int(v >> 6 & 63)]
                dst[o + 3] = alphabet[Int(v & 63)]
                i += 3
                o += 4
            }
            let rest = n - i
            if rest > 0 {
                let v = UInt32(src[i]) << 16 | (rest == 2 ? UInt32(src[i + 1]) << 8 : 0)
                dst[o] = alphabet[Int(v >> 18)]
                dst[o + 1] = alphabet[Int(v >> 12 & 63)]
                dst[o + 2] = rest == 2 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "=")
                dst[o + 3] = UInt8(ascii: "=")
            }
        }
        return encodedCount(of: n)
    }

    /// Appends the padded base64 text of `bytes` to `out`.
    public static func encode(_ bytes: [UInt8], into out: inout [UInt8]) {
        bytes.withUnsafeBytes { encode($0, into: &out) }
    }

    /// The bytes a strict base64 text stands for.
    public static func decode(_ text: UnsafeRawBufferPointer) throws(DecodingError) -> [UInt8] {
        let n = text.count
        guard n > 0, let src = text.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return [] }
        guard n % 4 == 0 else {
            throw DecodingError(offset: n, reason: "length \(n) is not a multiple of 4; base64 must be padded with '='")
        }
        let padding = src[n - 1] != UInt8(ascii: "=") ? 0 : (src[n - 2] != UInt8(ascii: "=") ? 1 : 2)
        let outCount = n / 4 * 3 - padding
        var failure: DecodingError? = nil
        let result = [UInt8](unsafeUninitializedCapacity: outCount) { buffer, initialized in
            decodeTable.withUnsafeBufferPointer { table in
                let lookup = table.baseAddress!
                let dst = buffer.baseAddress!
                let fullQuads = n / 4 - (padding > 0 ? 1 : 0)
                var q = 0
                var o = 0
                while q < fullQuads {
                    let i = q * 4
                    let a = lookup[Int(src[i])], b = lookup[Int(src[i + 1])]
                    let c = lookup[Int(src[i + 2])], d = lookup[Int(src[i + 3])]
                    if (a | b | c | d) & 0x80 != 0 {
                        failure = badCharacter(src, from: i, count: n)
                        initialized = 0
                        return
                    }
                    let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    dst[o] = UInt8(truncatingIfNeeded: v >> 16)
                    dst[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                    dst[o + 2] = UInt8(truncatingIfNeeded: v)
                    q += 1
                    o += 3
                }
                if padding > 0 {
                    let i = n - 4
                    let a = lookup[Int(src[i])], b = lookup[Int(src[i + 1])]
                    let c = padding == 1 ? lookup[Int(src[i + 2])] : 0
                    if (a | b | c) & 0x80 != 0 {
                        failure = badCharacter(src, from: i, count: n - padding)
                        initialized = 0
                        return
                    }
                    let unusedBits = padding == 1 ? c & 0x03 : b & 0x0F
                    if unusedBits != 0 {
                        let at = n - padding - 1
                        failure = DecodingError(offset: at, reason: "character '\(Character(Unicode.Scalar(src[at])))' at offset \(at) has non-zero bits after the last byte; the text is not canonical base64")
                        initialized = 0
                        return
                    }
                    let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                    dst[o] = UInt8(truncatingIfNeeded: v >> 16)
                    if padding == 1 { dst[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
                }
                initialized = outCount
            }
        }
        if let failure { throw failure }
        return result
    }

    /// The bytes a strict base64 text stands for.
    public static func decode(_ text: [UInt8]) throws(DecodingError) -> [UInt8] {
        let result: Result<[UInt8], DecodingError> = text.withUnsafeBytes { raw in
            Result { () throws(DecodingError) in try decode(raw) }
        }
        return try result.get()
    }

    /// The first character at or after `from` (and before `count`) that is not in the alphabet.
    private static func badCharacter(_ src: UnsafePointer<UInt8>, from: Int, count: Int) -> DecodingError {
        var i = from
        while i < count, decodeTable[Int(src[i])] & 0x80 == 0 { i += 1 }
        let b = src[i]
        if b == UInt8(ascii: "=") {
            return DecodingError(offset: i, reason: "padding '=' at offset \(i) before the end of the text")
        }
        let shown = b >= 0x21 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte \(JSONScanner.hexByte(b))"
        return DecodingError(offset: i, reason: "invalid character \(shown) at offset \(i)")
    }

    private static let encodeAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Character -> 6-bit value; 0xFF for characters outside the alphabet (including `=`).
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, char) in encodeAlphabet.enumerated() { table[Int(char)] = UInt8(value) }
        return table
    }()
}
