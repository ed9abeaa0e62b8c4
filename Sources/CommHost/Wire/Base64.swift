import CommBase64

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
        encode(bytes, into: &out, path: .fastest)
    }

    /// Appends the padded base64 text of `bytes` to `out`, the bulk done by `path`.
    static func encode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8], path: Path) {
        let n = encodedCount(of: bytes.count)
        guard n > 0 else { return }
        out.append(addingCapacity: n) { span in
            span.withUnsafeMutableBufferPointer { buffer, initialized in
                initialized += encode(bytes, to: buffer.baseAddress! + initialized, path: path)
            }
        }
    }

    /// Writes the padded base64 text of `bytes` at `dst`, which has room for
    /// ``encodedCount(of:)`` bytes; returns that count. `path`'s vector loop takes what it can,
    /// the scalar loop the rest.
    static func encode(_ bytes: UnsafeRawBufferPointer, to dst: UnsafeMutablePointer<UInt8>,
                       path: Path = .fastest) -> Int {
        let n = bytes.count
        guard n > 0, let src = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        let taken = commhost_base64_encode_prefix(path.rawValue, src, n, dst)
        encodeAlphabet.withUnsafeBufferPointer { table in
            let alphabet = table.baseAddress!
            var i = taken
            var o = taken / 3 * 4
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
        var out: [UInt8] = []
        try decode(text, appendingTo: &out)
        return out
    }

    /// Appends the bytes a strict base64 text stands for to `out`, decoding straight into its
    /// spare capacity; when the text is refused, `out` keeps its count and contents.
    public static func decode(_ text: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) throws(DecodingError) {
        try decode(text, appendingTo: &out, path: .fastest)
    }

    /// ``decode(_:appendingTo:)`` with the bulk done by `path`.
    static func decode(_ text: UnsafeRawBufferPointer, appendingTo out: inout [UInt8], path: Path) throws(DecodingError) {
        let n = text.count
        guard n > 0, let src = text.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        guard n % 4 == 0 else {
            throw DecodingError(offset: n, reason: "length \(n) is not a multiple of 4; base64 must be padded with '='")
        }
        let padding = src[n - 1] != UInt8(ascii: "=") ? 0 : (src[n - 2] != UInt8(ascii: "=") ? 1 : 2)
        let outCount = n / 4 * 3 - padding
        try out.append(addingCapacity: outCount) { (span: inout OutputSpan<UInt8>) throws(DecodingError) in
            try span.withUnsafeMutableBufferPointer { (buffer, initialized) throws(DecodingError) in
                try decode(src, count: n, padding: padding, path: path, to: buffer.baseAddress! + initialized)
                initialized += outCount
            }
        }
    }

    /// Decodes the `n` characters at `src` (a multiple of 4, the last `padding` of them `=`) to
    /// `dst`, which has room for `n / 4 * 3 - padding` bytes. `path`'s vector loop takes the
    /// clean blocks it can; the scalar loop goes on from the first block it left, so it alone
    /// finds and reports a bad character, with the same offset whatever the path.
    private static func decode(_ src: UnsafePointer<UInt8>, count n: Int, padding: Int, path: Path,
                               to dst: UnsafeMutablePointer<UInt8>) throws(DecodingError) {
        let fullQuads = n / 4 - (padding > 0 ? 1 : 0)
        let taken = commhost_base64_decode_prefix(path.rawValue, src, fullQuads * 4, dst)
        let failure: DecodingError? = decodeTable.withUnsafeBufferPointer { table in
            let lookup = table.baseAddress!
            var q = taken / 4
            var o = q * 3
            while q < fullQuads {
                let i = q * 4
                let a = lookup[Int(src[i])], b = lookup[Int(src[i + 1])]
                let c = lookup[Int(src[i + 2])], d = lookup[Int(src[i + 3])]
                if (a | b | c | d) & 0x80 != 0 { return badCharacter(src, from: i, count: n) }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                dst[o] = UInt8(truncatingIfNeeded: v >> 16)
                dst[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                dst[o + 2] = UInt8(truncatingIfNeeded: v)
                q += 1
                o += 3
            }
            guard padding > 0 else { return nil }
            let i = n - 4
            let a = lookup[Int(src[i])], b = lookup[Int(src[i + 1])]
            let c = padding == 1 ? lookup[Int(src[i + 2])] : 0
            if (a | b | c) & 0x80 != 0 { return badCharacter(src, from: i, count: n - padding) }
            let unusedBits = padding == 1 ? c & 0x03 : b & 0x0F
            if unusedBits != 0 {
                let at = n - padding - 1
                return DecodingError(offset: at, reason: "character '\(Character(Unicode.Scalar(src[at])))' at offset \(at) has non-zero bits after the last byte; the text is not canonical base64")
            }
            let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
            dst[o] = UInt8(truncatingIfNeeded: v >> 16)
            if padding == 1 { dst[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
            return nil
        }
        if let failure { throw failure }
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
