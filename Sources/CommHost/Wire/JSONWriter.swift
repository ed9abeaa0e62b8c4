/// Writes JSON text straight into memory reserved at the end of a byte array, either as it
/// stands (`.plain`) or as the contents of a JSON string (`.nested`, for a document carried in
/// another document's string value, as the `shinywidgets` dialect's `message` is).
///
/// The caller reserves an upper bound for everything it will write (``append(to:reserving:_:)``);
/// every write checks it stays inside and traps otherwise, so a wrong bound is a crash, never a
/// memory overwrite. Nothing is zero-filled and no write goes through `Array.append`.
struct JSONWriter {
    /// Where the text being written ends up.
    enum Level {
        /// Directly in the frame.
        case plain
        /// Inside a JSON string in the frame: everything is escaped once more.
        case nested
    }

    private let base: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    /// Bytes written so far.
    private(set) var count = 0

    private init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// Appends to `out` what `body` writes, which must be at most `bound` bytes.
    ///
    /// Inlined, so `body` is known where it is called: no closure context and no thunks between
    /// the array's spare capacity and the writer (about 40 instructions a reply).
    @inline(__always)
    static func append(to out: inout [UInt8], reserving bound: Int, _ body: (inout JSONWriter) -> Void) {
        out.append(addingCapacity: bound) { span in
            span.withUnsafeMutableBufferPointer { buffer, initialized in
                var writer = JSONWriter(base: buffer.baseAddress! + initialized, capacity: buffer.count - initialized)
                body(&writer)
                initialized += writer.count
            }
        }
    }

    /// Room `n` bytes escaped `times` times may take: `\u00XX` is 6 bytes for 1, and once more
    /// escaped `\\u00XX` is 7.
    static func escapedBound(_ n: Int, times: Int) -> Int {
        switch times {
        case 0: n
        case 1: 6 * n
        default: 7 * n
        }
    }

    // MARK: Raw bytes

    @inline(__always)
    private mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        precondition(n <= capacity &- count, "JSONWriter: frame larger than the bound reserved for it")
        let at = base + count
        count &+= n
        return at
    }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        reserve(1).pointee = b
    }

    @inline(__always)
    mutating func bytes(_ raw: UnsafeRawBufferPointer) {
        guard let source = raw.baseAddress, raw.count > 0 else { return }
        JSONWriter.copy(from: source, to: reserve(raw.count), count: raw.count)
    }

    /// Copies `n` bytes; runs of up to 64 bytes (most of a frame's pieces) without a call into
    /// libc, and never reading outside `[source, source + n)`.
    @inline(__always)
    static func copy(from source: UnsafeRawPointer, to target: UnsafeMutablePointer<UInt8>, count n: Int) {
        let to = UnsafeMutableRawPointer(target)
        if n >= 8 && n <= 64 {
            var i = 0
            while i &+ 8 < n {
                to.storeBytes(of: source.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
                i &+= 8
            }
            to.storeBytes(of: source.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self), toByteOffset: n &- 8, as: UInt64.self)
        } else if n < 8 {
            if n >= 4 {
                to.storeBytes(of: source.loadUnaligned(as: UInt32.self), as: UInt32.self)
                to.storeBytes(of: source.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self), toByteOffset: n &- 4, as: UInt32.self)
            } else {
                var i = 0
                while i < n {
                    to.storeBytes(of: source.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
                    i &+= 1
                }
            }
        } else {
            to.copyMemory(from: source, byteCount: n)
        }
    }

    /// Hands `body` the next `n` bytes of room (checked once, here) to write through a pointer;
    /// `body` returns how many it wrote, at most `n`.
    @inline(__always)
    mutating func withRoom(_ n: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        precondition(n <= capacity &- count, "JSONWriter: frame larger than the bound reserved for it")
        let written = body(base + count)
        precondition(written <= n, "JSONWriter: frame larger than the bound reserved for it")
        count &+= written
    }

    /// Copies `raw` to `p` (inside room the caller checked); returns the pointer after it.
    @inline(__always)
    static func put(_ raw: UnsafeRawBufferPointer, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        guard let source = raw.baseAddress, raw.count > 0 else { return p }
        copy(from: source, to: p, count: raw.count)
        return p + raw.count
    }

    /// Copies the ASCII text `text` to `p` (inside room the caller checked); returns the pointer
    /// after it.
    @inline(__always)
    static func put(_ text: StaticString, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        // The length of a literal is a constant here, so this copy compiles to a few moves.
        UnsafeMutableRawPointer(p).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        return p + text.utf8CodeUnitCount
    }

    /// `raw` escaped once as the contents of a JSON string at `p`, inside room the caller
    /// checked for ``escapedBound(_:times:)`` bytes and 8 more; returns the pointer after it.
    /// An id of up to 8 bytes with nothing to escape (the usual comm id) is checked and stored
    /// as one word.
    @inline(__always)
    static func putEscaped(_ raw: UnsafeRawBufferPointer, at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        let n = raw.count
        if n >= 4 && n <= 8, let source = raw.baseAddress {
            // The n bytes as one word (two overlapping 4-byte loads), the bytes past n set to a
            // letter so only the id's own bytes can ask for an escape.
            let low = UInt64(UInt32(littleEndian: source.loadUnaligned(as: UInt32.self)))
            let high = UInt64(UInt32(littleEndian: source.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)))
            let word = low | high << UInt64(8 &* (n &- 4))
            let used: UInt64 = n == 8 ? ~0 : (1 << UInt64(8 &* n)) &- 1
            let padded = (word & used) | (0x6161_6161_6161_6161 & ~used)
            if escapeMask(padded) == 0 {
                UnsafeMutableRawPointer(p).storeBytes(of: padded.littleEndian, as: UInt64.self)
                return p + n
            }
        }
        var writer = JSONWriter(base: p, capacity: escapedBound(n, times: 1))
        writer.escape(raw, times: 1)
        return p + writer.count
    }

    @inline(__always)
    mutating func bytes(_ array: [UInt8]) {
        array.withUnsafeBytes { bytes($0) }
    }

    // MARK: JSON

    /// ASCII structural text such as `{"content":{"data":`.
    @inline(__always)
    mutating func structure(_ text: StaticString, _ level: Level) {
        let raw = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        if level == .plain {
            bytes(raw)
        } else {
            escape(raw, times: 1)
        }
    }

    /// JSON text already known to be valid (a plugin's `data`, a raw message id token). At the
    /// plain level, line breaks between tokens become spaces so the text cannot split a frame;
    /// valid JSON has no raw line break inside a string, so no value changes.
    mutating func json(_ text: UnsafeRawBufferPointer, _ level: Level) {
        guard level == .plain else {
            escape(text, times: 1)
            return
        }
        guard let source = text.baseAddress, text.count > 0 else { return }
        let n = text.count
        let at = reserve(n)
        let to = UnsafeMutableRawPointer(at)
        // Copied and checked for line breaks in one pass, a word at a time; the last word
        // overlaps the one before it rather than going byte by byte.
        var found: UInt64 = 0
        if n >= 8 {
            var i = 0
            while i &+ 8 < n {
                let w = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                to.storeBytes(of: w, toByteOffset: i, as: UInt64.self)
                found |= JSONWriter.lineBreakMask(w)
                i &+= 8
            }
            let w = source.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            to.storeBytes(of: w, toByteOffset: n &- 8, as: UInt64.self)
            found |= JSONWriter.lineBreakMask(w)
        } else {
            var i = 0
            while i < n {
                let b = source.load(fromByteOffset: i, as: UInt8.self)
                at[i] = b
                if b == 0x0A || b == 0x0D { found = 1 }
                i &+= 1
            }
        }
        if found != 0 {
            for i in 0..<n where at[i] == 0x0A || at[i] == 0x0D { at[i] = 0x20 }
        }
    }

    /// `{}` if `text` is empty, else ``json(_:_:)``; with `oneLine` (at the plain level) the
    /// caller knows `text` holds no line break, and it is copied without a look for one.
    @inline(__always)
    mutating func object(_ text: UnsafeRawBufferPointer, _ level: Level, oneLine: Bool = false) {
        if text.isEmpty {
            structure("{}", level)
        } else if oneLine && level == .plain {
            bytes(text)
        } else {
            json(text, level)
        }
    }

    /// A JSON string value holding the UTF-8 bytes `text`, quotes included.
    mutating func string(_ text: UnsafeRawBufferPointer, _ level: Level) {
        structure("\"", level)
        escape(text, times: level == .plain ? 1 : 2)
        structure("\"", level)
    }

    /// A non-negative integer in decimal.
    mutating func integer(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var v = value
        var n = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            repeat {
                scratch[23 - n] = UInt8(truncatingIfNeeded: v % 10) &+ UInt8(ascii: "0")
                v /= 10
                n += 1
            } while v > 0
            bytes(UnsafeRawBufferPointer(rebasing: scratch[(24 - n)..<24]))
        }
    }

    /// A signed integer in decimal.
    mutating func integer(_ value: Int) {
        if value < 0 { byte(UInt8(ascii: "-")) }
        integer(UInt64(value.magnitude))
    }

    /// The base64 text of `raw` (no quotes).
    mutating func base64(_ raw: UnsafeRawBufferPointer) {
        let n = Base64.encodedCount(of: raw.count)
        _ = Base64.encode(raw, to: reserve(n))
    }

    /// `raw` escaped as the contents of a JSON string `times` times over (1: once, 2: the result
    /// escaped again). Clean 8-byte words are copied whole; a word holding a byte to escape is
    /// done byte by byte.
    mutating func escape(_ raw: UnsafeRawBufferPointer, times: Int) {
        guard let source = raw.baseAddress, raw.count > 0 else { return }
        let src = source.assumingMemoryBound(to: UInt8.self)
        let n = raw.count
        // Every input byte yields at least one output byte, so n bytes must fit; escapes take
        // their extra bytes out of `slack`, checked as they come.
        precondition(n <= capacity &- count, "JSONWriter: frame larger than the bound reserved for it")
        var slack = capacity &- count &- n
        let out = base + count
        let twice = times == 2
        var i = 0
        var o = 0
        while i &+ 8 <= n {
            let word = UnsafeRawPointer(src + i).loadUnaligned(as: UInt64.self)
            if JSONWriter.escapeMask(word) == 0 {
                UnsafeMutableRawPointer(out + o).storeBytes(of: word, as: UInt64.self)
                i &+= 8
                o &+= 8
                continue
            }
            let end = i &+ 8
            while i < end {
                o = JSONWriter.put(src[i], at: out, o, twice: twice, slack: &slack)
                i &+= 1
            }
        }
        while i < n {
            o = JSONWriter.put(src[i], at: out, o, twice: twice, slack: &slack)
            i &+= 1
        }
        count &+= o
    }

    /// Writes `b` at `out + o`, escaped if it must be, and returns the new offset. Bytes beyond
    /// the first of an escape come out of `slack`.
    @inline(__always)
    private static func put(_ b: UInt8, at out: UnsafeMutablePointer<UInt8>, _ o: Int, twice: Bool, slack: inout Int) -> Int {
        guard needsEscape(b) else {
            out[o] = b
            return o &+ 1
        }
        let backslash = UInt8(ascii: "\\")
        let short: UInt8
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): short = b
        case 0x08: short = UInt8(ascii: "b")
        case 0x0C: short = UInt8(ascii: "f")
        case 0x0A: short = UInt8(ascii: "n")
        case 0x0D: short = UInt8(ascii: "r")
        case 0x09: short = UInt8(ascii: "t")
        default: short = 0
        }
        // Once: `\"`, `\n`, `\u00XX`. Twice: a second backslash before those, and `"` and `\`
        // themselves take one more (`\\\"`).
        var length = short == 0 ? 6 : 2
        if twice { length += short == b ? 2 : 1 }
        precondition(length - 1 <= slack, "JSONWriter: frame larger than the bound reserved for it")
        slack -= length - 1
        var p = out + o
        p[0] = backslash
        p += 1
        if twice {
            p[0] = backslash
            p += 1
            if short == b {
                p[0] = backslash
                p += 1
            }
        }
        if short != 0 {
            p[0] = short
        } else {
            let hex: StaticString = "0123456789abcdef"
            p[0] = UInt8(ascii: "u")
            p[1] = UInt8(ascii: "0")
            p[2] = UInt8(ascii: "0")
            p[3] = hex.utf8Start[Int(b >> 4)]
            p[4] = hex.utf8Start[Int(b & 15)]
        }
        return o &+ length
    }

    /// Nonzero exactly when one of the 8 bytes of `w` is `\n` or `\r`.
    @inline(__always)
    private static func lineBreakMask(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let lf = w ^ (ones &* 0x0A)
        let cr = w ^ (ones &* 0x0D)
        return ((lf &- ones) & ~lf | (cr &- ones) & ~cr) & (ones &* 0x80)
    }

    @inline(__always)
    private static func needsEscape(_ b: UInt8) -> Bool {
        b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\")
    }

    /// Top bit set in each of the 8 bytes that is `"`, `\` or below 0x20; the lowest set bit is
    /// exact (higher ones may be borrows).
    @inline(__always)
    static func escapeMask(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        let hasQuote = (quote &- ones) & ~quote
        let hasBackslash = (backslash &- ones) & ~backslash
        let hasControl = (w &- (ones &* 0x20)) & ~w
        return (hasQuote | hasBackslash | hasControl) & (ones &* 0x80)
    }
}
