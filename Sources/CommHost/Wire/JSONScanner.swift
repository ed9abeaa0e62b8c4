/// The one strict JSON (RFC 8259) grammar of the host: a cursor over UTF-8 bytes that checks
/// what it steps over without building any value.
///
/// ``JSONValidator`` (JSON a plugin hands the host), ``FrameParser`` (the envelope of every
/// inbound frame) and ``JSONDocument`` (the manifest and plugin configs) all scan with this type,
/// so the host has one idea of what valid JSON is:
/// no trailing commas, no bare control characters in strings, only the escapes RFC 8259 lists,
/// `\u` surrogates only in high-low pairs, well-formed UTF-8, numbers as the RFC's grammar
/// spells them, and no more than `maxDepth` arrays and objects open at once.
///
/// What it refuses is a ``WireError`` that also carries the finding as a ``JSONFault``, made only
/// when a text is refused. The bytes must stay valid and unchanged while the scanner is used.
struct JSONScanner {
    let base: UnsafePointer<UInt8>
    let count: Int
    let maxDepth: Int
    /// Offset of the next byte to look at.
    var pos: Int = 0
    /// Whether a `\n` or `\r` was stepped over (only whitespace between tokens can hold one in
    /// valid JSON: strings may not), so text that passed has none when this is false.
    private(set) var sawLineBreak = false

    init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        if let address = bytes.baseAddress {
            base = address.assumingMemoryBound(to: UInt8.self)
        } else {
            // An empty buffer may have no address; `count == 0` keeps every read away from it.
            base = UnsafePointer(bitPattern: 1)!
        }
        count = bytes.count
        self.maxDepth = maxDepth
    }

    // MARK: Looking

    /// The byte at `pos`, or nil at the end.
    @inline(__always)
    var current: UInt8? { pos < count ? base[pos] : nil }

    /// The kind of value starting at `pos`, or nil if none can start there.
    @inline(__always)
    var currentKind: JSONKind? { pos < count ? JSONKind(firstByte: base[pos]) : nil }

    @inline(__always)
    mutating func skipWhitespace() {
        if pos < count, base[pos] <= 0x20 { skipWhitespaceRun() }
    }

    private mutating func skipWhitespaceRun() {
        var p = pos
        while p < count {
            let b = base[p]
            guard b <= 0x20 else { break }
            if b == 0x0A || b == 0x0D {
                sawLineBreak = true
            } else if b != 0x20 && b != 0x09 {
                break
            }
            p &+= 1
        }
        pos = p
    }

    /// Checks that only whitespace is left.
    mutating func expectEnd(_ what: String) throws(WireError) {
        skipWhitespace()
        if pos != count { throw syntaxError(expected: .end(what)) }
    }

    // MARK: Containers, a member at a time (for readers that care what the members are)

    /// At a `{` that is the `depth`-th open container: steps into it. Returns false (having
    /// stepped past the `}`) if the object is empty; otherwise `pos` is at its first key.
    @inline(__always)
    mutating func enterObject(depth: Int) throws(WireError) -> Bool {
        if depth > maxDepth { throw depthError() }
        pos += 1
        skipWhitespace()
        if pos < count, base[pos] == UInt8(ascii: "}") {
            pos += 1
            return false
        }
        return true
    }

    /// At a member: reads its name and the `:` after it, leaving `pos` at the value.
    @inline(__always)
    mutating func readKey() throws(WireError) -> StringToken {
        guard pos < count, base[pos] == UInt8(ascii: "\"") else {
            throw syntaxError(expected: .memberName)
        }
        let key = try scanString()
        if pos < count, base[pos] == UInt8(ascii: ":") {
            pos &+= 1
        } else {
            skipWhitespace()
            guard pos < count, base[pos] == UInt8(ascii: ":") else { throw syntaxError(expected: .colon) }
            pos &+= 1
        }
        skipWhitespace()
        return key
    }

    /// After a member's value: returns true at `,` (with `pos` at the next key), false after the
    /// closing `}`.
    @inline(__always)
    mutating func nextMember() throws(WireError) -> Bool {
        skipWhitespace()
        if pos < count {
            let b = base[pos]
            if b == UInt8(ascii: ",") {
                pos &+= 1
                skipWhitespace()
                return true
            }
            if b == UInt8(ascii: "}") {
                pos &+= 1
                return false
            }
        }
        throw syntaxError(expected: .commaOrBrace)
    }

    /// At a `[` that is the `depth`-th open container: steps into it. Returns false (having
    /// stepped past the `]`) if the array is empty; otherwise `pos` is at its first value.
    @inline(__always)
    mutating func enterArray(depth: Int) throws(WireError) -> Bool {
        if depth > maxDepth { throw depthError() }
        pos += 1
        skipWhitespace()
        if pos < count, base[pos] == UInt8(ascii: "]") {
            pos += 1
            return false
        }
        return true
    }

    /// After an element: returns true at `,` (with `pos` at the next value), false after the
    /// closing `]`.
    @inline(__always)
    mutating func nextElement() throws(WireError) -> Bool {
        skipWhitespace()
        if pos < count {
            let b = base[pos]
            if b == UInt8(ascii: ",") {
                pos &+= 1
                skipWhitespace()
                return true
            }
            if b == UInt8(ascii: "]") {
                pos &+= 1
                return false
            }
        }
        throw syntaxError(expected: .commaOrBracket)
    }

    // MARK: Whole values

    /// Checks one complete value starting at `pos` and steps past it. `enclosingDepth` is the
    /// number of containers already open around it, so the limit applies to the whole document.
    mutating func skipValue(enclosingDepth: Int) throws(WireError) {
        // Bit i of `objects` tells whether the container open at level i of this call is an
        // object. A container 64 levels down is checked by a nested call with fresh bits, so
        // nothing is allocated and the recursion is at most maxDepth / 64 deep.
        var objects: UInt64 = 0
        var depth = 0
        value: while true {
            guard pos < count else { throw syntaxError(expected: .value) }
            switch base[pos] {
            case UInt8(ascii: "{"):
                if depth == 64 {
                    try skipValue(enclosingDepth: enclosingDepth &+ 64)
                } else if try enterObject(depth: enclosingDepth &+ depth &+ 1) {
                    objects |= 1 << UInt64(depth)
                    depth &+= 1
                    _ = try readKey()
                    continue value
                }
            case UInt8(ascii: "["):
                if depth == 64 {
                    try skipValue(enclosingDepth: enclosingDepth &+ 64)
                } else if try enterArray(depth: enclosingDepth &+ depth &+ 1) {
                    objects &= ~(1 << UInt64(depth))
                    depth &+= 1
                    continue value
                }
            case UInt8(ascii: "\""):
                _ = try scanString()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try scanNumber()
            case UInt8(ascii: "t"):
                try scanLiteral("true")
            case UInt8(ascii: "f"):
                try scanLiteral("false")
            case UInt8(ascii: "n"):
                try scanLiteral("null")
            default:
                throw syntaxError(expected: .value)
            }
            // A value ended: close containers until one has a next member or element.
            while depth > 0 {
                if objects >> UInt64(depth &- 1) & 1 == 1 {
                    if try nextMember() {
                        _ = try readKey()
                        continue value
                    }
                } else if try nextElement() {
                    continue value
                }
                depth &-= 1
            }
            return
        }
    }

    // MARK: Tokens

    /// At a `"`: checks the string (escapes, UTF-8, no bare control characters) and steps past
    /// its closing quote.
    @inline(__always)
    mutating func scanString() throws(WireError) -> StringToken {
        let start = pos
        var p = pos + 1
        var escaped = false
        while true {
            if p &+ 8 <= count {
                let word = UnsafeRawPointer(base + p).loadUnaligned(as: UInt64.self)
                let mask = JSONScanner.attentionMask(word)
                if mask == 0 {
                    p &+= 8
                    continue
                }
                // The lowest flagged byte is exact (see attentionMask), and the wire is little-endian
                // in memory order, so it is the first byte that needs a look.
                p &+= mask.littleEndian.trailingZeroBitCount >> 3
            } else if p >= count {
                pos = p
                throw unterminatedStringError(start: start)
            }
            let b = base[p]
            if b == UInt8(ascii: "\"") {
                pos = p + 1
                return StringToken(start: start, end: p + 1, hasEscapes: escaped)
            }
            if b == UInt8(ascii: "\\") {
                escaped = true
                p = try scanEscape(at: p)
            } else if b < 0x20 {
                pos = p
                throw controlCharacterError(at: p)
            } else if b < 0x80 {
                p += 1
            } else {
                p = try scanUTF8(at: p)
            }
        }
    }

    /// One bit (a byte's top bit) set for each of the 8 bytes that is `"`, `\`, below 0x20 or
    /// above 0x7F. The lowest set bit is always exact; bits above it may be false positives
    /// (borrows), which only matter after the first flagged byte has been dealt with.
    @inline(__always)
    static func attentionMask(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        let hasQuote = (quote &- ones) & ~quote
        let hasBackslash = (backslash &- ones) & ~backslash
        // Bytes below 0x20 borrow into their top bit; bytes above 0x7F have it set already.
        let controlOrHigh = (w &- (ones &* 0x20)) | w
        return (hasQuote | hasBackslash | controlOrHigh) & highs
    }

    /// At a `\` inside a string: checks the escape and returns the offset after it.
    @inline(never)
    private func scanEscape(at p: Int) throws(WireError) -> Int {
        guard p + 1 < count else {
            throw syntaxErrorAt(p + 1, expected: .escapeCharacter)
        }
        switch base[p + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return p + 2
        case UInt8(ascii: "u"):
            let unit = try hex4(at: p + 2)
            if unit & 0xFC00 == 0xD800 {
                guard p + 7 < count, base[p + 6] == UInt8(ascii: "\\"), base[p + 7] == UInt8(ascii: "u") else {
                    throw WireError(.invalidJSON, "invalid JSON at byte \(p): high surrogate \\u\(JSONScanner.hex4String(unit)) is not followed by a low surrogate escape",
                                    fault: JSONFault(offset: p, reason: .unpairedHighSurrogate(unit)))
                }
                let low = try hex4(at: p + 8)
                guard low & 0xFC00 == 0xDC00 else {
                    throw WireError(.invalidJSON, "invalid JSON at byte \(p): high surrogate \\u\(JSONScanner.hex4String(unit)) is followed by \\u\(JSONScanner.hex4String(low)), not a low surrogate",
                                    fault: JSONFault(offset: p, reason: .highSurrogateFollowedBy(unit, low)))
                }
                return p + 12
            }
            if unit & 0xFC00 == 0xDC00 {
                throw WireError(.invalidJSON, "invalid JSON at byte \(p): low surrogate \\u\(JSONScanner.hex4String(unit)) without a high surrogate before it",
                                fault: JSONFault(offset: p, reason: .loneLowSurrogate(unit)))
            }
            return p + 6
        default:
            throw syntaxErrorAt(p + 1, expected: .escapeLetter)
        }
    }

    /// The value of four hex digits at `p`.
    @inline(__always)
    private func hex4(at p: Int) throws(WireError) -> UInt16 {
        var value: UInt16 = 0
        var i = p
        while i < p + 4 {
            guard i < count, let digit = JSONScanner.hexValue(base[i]) else {
                throw syntaxErrorAt(i, expected: .hexDigit)
            }
            value = value << 4 | UInt16(digit)
            i += 1
        }
        return value
    }

    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// At a byte >= 0x80 inside a string: checks one UTF-8 sequence (Unicode table 3-7, so no
    /// overlong forms, no surrogates, nothing above U+10FFFF) and returns the offset after it.
    @inline(never)
    private func scanUTF8(at p: Int) throws(WireError) -> Int {
        let lead = base[p]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        case 0x80...0xBF:
            throw utf8Error(at: p, "unexpected continuation byte \(JSONScanner.hexByte(lead))")
        case 0xC0, 0xC1:
            throw utf8Error(at: p, "overlong encoding (lead byte \(JSONScanner.hexByte(lead)))")
        default:
            throw utf8Error(at: p, "lead byte \(JSONScanner.hexByte(lead)) would encode a code point above U+10FFFF")
        }
        guard p + length <= count else {
            throw utf8Error(at: p, "truncated \(length)-byte sequence")
        }
        let second = base[p + 1]
        guard second >= low, second <= high else {
            if second & 0xC0 != 0x80 {
                throw utf8Error(at: p, "truncated \(length)-byte sequence")
            }
            switch lead {
            case 0xE0, 0xF0: throw utf8Error(at: p, "overlong encoding")
            case 0xED: throw utf8Error(at: p, "UTF-16 surrogate encoded in UTF-8")
            default: throw utf8Error(at: p, "code point above U+10FFFF")
            }
        }
        var i = p + 2
        while i < p + length {
            guard base[i] & 0xC0 == 0x80 else {
                throw utf8Error(at: p, "truncated \(length)-byte sequence")
            }
            i += 1
        }
        return p + length
    }

    /// At a `-` or digit: checks a number (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`)
    /// and steps past it.
    @inline(__always)
    mutating func scanNumber() throws(WireError) {
        var p = pos
        if base[p] == UInt8(ascii: "-") { p += 1 }
        guard p < count else { throw syntaxErrorAt(p, expected: .digit) }
        let first = base[p]
        if first == UInt8(ascii: "0") {
            p += 1
            if p < count, JSONScanner.isDigit(base[p]) {
                throw WireError(.invalidJSON, "invalid JSON at byte \(p - 1): a number must not start with 0 followed by more digits",
                                fault: JSONFault(offset: p - 1, reason: .leadingZero))
            }
        } else if JSONScanner.isDigit(first) {
            p += 1
            while p < count, JSONScanner.isDigit(base[p]) { p += 1 }
        } else {
            throw syntaxErrorAt(p, expected: .digit)
        }
        if p < count, base[p] == UInt8(ascii: ".") {
            p += 1
            guard p < count, JSONScanner.isDigit(base[p]) else {
                throw syntaxErrorAt(p, expected: .digitAfterDecimalPoint)
            }
            while p < count, JSONScanner.isDigit(base[p]) { p += 1 }
        }
        if p < count, base[p] | 0x20 == UInt8(ascii: "e") {
            p += 1
            if p < count, base[p] == UInt8(ascii: "+") || base[p] == UInt8(ascii: "-") { p += 1 }
            guard p < count, JSONScanner.isDigit(base[p]) else {
                throw syntaxErrorAt(p, expected: .digitInExponent)
            }
            while p < count, JSONScanner.isDigit(base[p]) { p += 1 }
        }
        pos = p
    }

    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    /// At `t`, `f` or `n`: checks the literal and steps past it.
    @inline(__always)
    mutating func scanLiteral(_ literal: StaticString) throws(WireError) {
        let n = literal.utf8CodeUnitCount
        let text = literal.utf8Start
        var i = 0
        while i < n {
            guard pos + i < count, base[pos + i] == text[i] else {
                throw syntaxErrorAt(pos + i, expected: .literal(literal))
            }
            i += 1
        }
        pos += n
    }

    // MARK: Reading what was scanned

    /// The bytes a string token stands for: escapes decoded (surrogate pairs to one UTF-8
    /// sequence). Only for tokens this scanner returned, which are known to be valid.
    func decodedBytes(_ token: StringToken) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(token.contentEnd - token.contentStart)
        var p = token.contentStart
        let end = token.contentEnd
        while p < end {
            let b = base[p]
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                p += 1
                continue
            }
            let e = base[p + 1]
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = UInt32(hexDigits(at: p + 2))
                if scalar & 0xFC00 == 0xD800 {
                    let low = UInt32(hexDigits(at: p + 8))
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    p += 6
                }
                out.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
                p += 6
                continue
            default: out.append(e)
            }
            p += 2
        }
        return out
    }

    private func hexDigits(at p: Int) -> UInt16 {
        var value: UInt16 = 0
        for i in p..<p + 4 { value = value << 4 | UInt16(JSONScanner.hexValue(base[i])!) }
        return value
    }

    /// The string a token stands for.
    func string(_ token: StringToken) -> String {
        if token.hasEscapes {
            return String(decoding: decodedBytes(token), as: UTF8.self)
        }
        return String(decoding: UnsafeBufferPointer(start: base + token.contentStart,
                                                    count: token.contentEnd - token.contentStart),
                      as: UTF8.self)
    }

    /// Whether a string token stands for exactly the ASCII text `literal`.
    @inline(__always)
    func token(_ token: StringToken, is literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        if token.hasEscapes {
            let decoded = decodedBytes(token)
            return decoded.count == n && decoded.elementsEqual(UnsafeBufferPointer(start: literal.utf8Start, count: n))
        }
        guard token.contentEnd &- token.contentStart == n else { return false }
        return JSONScanner.bytesEqual(base + token.contentStart, literal.utf8Start, n)
    }

    /// Whether two string tokens stand for the same string.
    func tokensEqual(_ a: StringToken, _ b: StringToken) -> Bool {
        if a.hasEscapes || b.hasEscapes { return decodedBytes(a) == decodedBytes(b) }
        let n = a.contentEnd &- a.contentStart
        guard b.contentEnd &- b.contentStart == n else { return false }
        return JSONScanner.bytesEqual(base + a.contentStart, base + b.contentStart, n)
    }

    /// Whether `n` bytes at `a` and `b` are equal; short runs without a call into libc.
    @inline(__always)
    static func bytesEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        if n >= 8 {
            var i = 0
            while i &+ 8 < n {
                if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self) != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                    return false
                }
                i &+= 8
            }
            return ra.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self) == rb.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
        }
        if n >= 4 {
            return ra.loadUnaligned(as: UInt32.self) == rb.loadUnaligned(as: UInt32.self)
                && ra.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self) == rb.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
        }
        var i = 0
        while i < n {
            if a[i] != b[i] { return false }
            i &+= 1
        }
        return true
    }

    /// A token's text for an error message: decoded, at most 64 bytes, invalid cuts repaired.
    func displayString(_ token: StringToken) -> String {
        let bytes = decodedBytes(token)
        if bytes.count <= 64 { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: bytes.prefix(64), as: UTF8.self) + "..."
    }

    // MARK: Errors

    // Each error carries its finding as a ``JSONFault`` too, so ``JSONDocument`` can word it.

    func syntaxError(expected: JSONFault.Expected) -> WireError { syntaxErrorAt(pos, expected: expected) }

    @inline(never)
    func syntaxErrorAt(_ p: Int, expected: JSONFault.Expected) -> WireError {
        let fault = JSONFault(offset: p, reason: .expected(expected))
        if p >= count {
            return WireError(.invalidJSON, "invalid JSON at byte \(p): expected \(expected.text), found the end of the input", fault: fault)
        }
        return WireError(.invalidJSON, "invalid JSON at byte \(p): expected \(expected.text), found \(JSONScanner.describeByte(base[p]))",
                         fault: fault)
    }

    @inline(never)
    func unterminatedStringError(start: Int) -> WireError {
        WireError(.invalidJSON, "invalid JSON at byte \(pos): expected '\"' to end the string that starts at byte \(start), found the end of the input",
                  fault: JSONFault(offset: pos, reason: .unterminatedString(start: start)))
    }

    @inline(never)
    func controlCharacterError(at p: Int) -> WireError {
        WireError(.invalidJSON, "invalid JSON at byte \(p): control character \(JSONScanner.hexByte(base[p])) must be escaped inside a string",
                  fault: JSONFault(offset: p, reason: .controlCharacter(base[p])))
    }

    @inline(never)
    func depthError() -> WireError {
        WireError(.depthLimit, "arrays and objects nested more than \(maxDepth) deep at byte \(pos); flatten the data or raise the depth limit",
                  fault: JSONFault(offset: pos, reason: .tooDeep(maxDepth: maxDepth)))
    }

    @inline(never)
    private func utf8Error(at p: Int, _ what: String) -> WireError {
        WireError(.invalidUTF8, "invalid UTF-8 in a string at byte \(p): \(what)", fault: JSONFault(offset: p, reason: .invalidUTF8(what)))
    }

    static func describeByte(_ b: UInt8) -> String {
        if b >= 0x21 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte \(hexByte(b))"
    }

    static func hexByte(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "0x\(digits[Int(b >> 4)])\(digits[Int(b & 15)])"
    }

    static func hex4String(_ v: UInt16) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(v >> 12)], digits[Int(v >> 8 & 15)], digits[Int(v >> 4 & 15)], digits[Int(v & 15)]])
    }
}
