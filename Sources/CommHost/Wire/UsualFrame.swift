import Glibc

/// The fast path of ``FrameParser/scan(_:)``: a straight-line walk of the envelope a client
/// usually sends (`comm_msg`, `comm_open` or `comm_close` with only the members the parser
/// knows), which either returns exactly the ``ScannedFrame`` the general walk would, or nil.
///
/// Nil means "not the usual frame" (an unknown or escaped member name, a repeated member, a
/// member of an unexpected type, another message type, a buffer spelled with escapes) or "not
/// valid" (any scanner error, a base64 error); the general walk then reads the frame again and
/// decides everything, every error and its message included. So this path never words an error
/// and can only be faster, never different: `WireUsualFrameTests` runs both paths over the
/// usual frames and their near misses and a fuzz corpus, and `WireJSONTests` (the shared JSON
/// table) and `WireFrameParserTests` (every frame they parse) check they agree too.
///
/// What makes it cheap: the widget front end's comm_msg, the commonest frame, is compared as
/// words whole (``commonCommMsg(_:into:)``); any other frame is walked member by member, names
/// recognised by comparing the 8-byte word after the opening quote (no token compare, no
/// `MemberNames` set: each name is a known one, and a bit per name catches a repeat). The state
/// is a handful of locals, and the values are checked with the same ``JSONScanner`` primitives
/// the general walk uses (so positions, depth and line breaks are counted the same way).
enum UsualFrame {
    /// Bits for the members seen (one per name, across the three objects).
    private static let msgTypeBit: UInt32 = 1 << 0
    private static let contentBit: UInt32 = 1 << 1
    private static let headerBit: UInt32 = 1 << 2
    private static let metadataBit: UInt32 = 1 << 3
    private static let buffersBit: UInt32 = 1 << 4
    private static let headerMsgIDBit: UInt32 = 1 << 5
    private static let headerMsgTypeBit: UInt32 = 1 << 6
    private static let commIDBit: UInt32 = 1 << 7
    private static let dataBit: UInt32 = 1 << 8
    private static let targetNameBit: UInt32 = 1 << 9
    private static let targetModuleBit: UInt32 = 1 << 10

    // Little-endian words of member-name text after the opening quote.
    private static let wMsgType: UInt64 = 0x6570_7974_5F67_736D // msg_type
    private static let wMetadata: UInt64 = 0x6174_6164_6174_656D // metadata
    private static let wContentQ: UInt64 = 0x2274_6E65_746E_6F63 // content"
    private static let wBuffersQ: UInt64 = 0x2273_7265_6666_7562 // buffers"
    private static let wHeaderQ: UInt64 = 0x0022_7265_6461_6568 // header" (7 bytes)
    private static let wMsgIDQ: UInt64 = 0x0022_6469_5F67_736D // msg_id" (7 bytes)
    private static let wCommIDQ: UInt64 = 0x2264_695F_6D6D_6F63 // comm_id"
    private static let wDataQ: UInt64 = 0x0000_0022_6174_6164 // data" (5 bytes)
    private static let wTargetN: UInt64 = 0x6E5F_7465_6772_6174 // target_n
    private static let wTargetM: UInt64 = 0x6D5F_7465_6772_6174 // target_m
    private static let wAmeQ: UInt64 = 0x2265_6D61 // ame" (4 bytes)
    private static let wOduleQ: UInt64 = 0x0000_2265_6C75_646F // odule" (6 bytes)
    private static let wCommMsg: UInt64 = 0x6773_6D5F_6D6D_6F63 // comm_msg
    private static let wCommOpe: UInt64 = 0x6570_6F5F_6D6D_6F63 // comm_ope
    private static let wCommClo: UInt64 = 0x6F6C_635F_6D6D_6F63 // comm_clo

    @inline(__always)
    private static func low(_ w: UInt64, _ bytes: Int) -> UInt64 { w & (~0 as UInt64) >> UInt64(64 &- 8 &* bytes) }

    /// The 8 bytes at `p` as a little-endian word; the caller has checked `p + 8 <= count`.
    @inline(__always)
    private static func word(_ s: borrowing JSONScanner, _ p: Int) -> UInt64 {
        UInt64(littleEndian: UnsafeRawPointer(s.base + p).loadUnaligned(as: UInt64.self))
    }

    /// At a member name: which known member it is (its bit) and the offset after its closing
    /// quote, or nil for any other name (escaped, unknown, or too close to the end to tell).
    @inline(__always)
    private static func name(_ s: borrowing JSONScanner, in object: Int) -> (bit: UInt32, end: Int)? {
        let p = s.pos
        // Every name is followed by at least `:` and a value, so 10 bytes from the quote are
        // there in a frame that can be valid; a shorter rest goes to the general walk.
        guard p &+ 10 <= s.count, s.base[p] == UInt8(ascii: "\"") else { return nil }
        let w = word(s, p &+ 1)
        let quoteAt9 = s.base[p &+ 9] == UInt8(ascii: "\"")
        switch object {
        case 0:
            if w == wMsgType, quoteAt9 { return (msgTypeBit, p &+ 10) }
            if w == wContentQ { return (contentBit, p &+ 9) }
            if low(w, 7) == wHeaderQ { return (headerBit, p &+ 8) }
            if w == wMetadata, quoteAt9 { return (metadataBit, p &+ 10) }
            if w == wBuffersQ { return (buffersBit, p &+ 9) }
        case 1:
            if low(w, 7) == wMsgIDQ { return (headerMsgIDBit, p &+ 8) }
            if w == wMsgType, quoteAt9 { return (headerMsgTypeBit, p &+ 10) }
        default:
            if w == wCommIDQ { return (commIDBit, p &+ 9) }
            if low(w, 5) == wDataQ { return (dataBit, p &+ 6) }
            // target_name: `ame"` in bytes 9-12; target_module: `odule"` in bytes 9-14.
            if w == wTargetN, p &+ 13 <= s.count, word(s, p &+ 5) >> 32 == wAmeQ { return (targetNameBit, p &+ 13) }
            if w == wTargetM, p &+ 15 <= s.count, word(s, p &+ 7) >> 16 == wOduleQ { return (targetModuleBit, p &+ 15) }
        }
        return nil
    }

    /// After a member name (at `end`): steps over the `:` and the whitespace around it. False
    /// when no `:` follows.
    @inline(__always)
    private static func colon(_ s: inout JSONScanner, after end: Int) -> Bool {
        s.pos = end
        if end < s.count, s.base[end] == UInt8(ascii: ":") {
            s.pos = end &+ 1
        } else {
            s.skipWhitespace()
            guard s.current == UInt8(ascii: ":") else { return false }
            s.pos &+= 1
        }
        s.skipWhitespace()
        return true
    }

    /// At a `{` one level below the frame object: steps in (the caller has checked the depth
    /// limit allows 2). Returns false, past the `}`, for an empty object.
    @inline(__always)
    private static func enter(_ s: inout JSONScanner) -> Bool {
        s.pos &+= 1
        s.skipWhitespace()
        if s.current == UInt8(ascii: "}") {
            s.pos &+= 1
            return false
        }
        return true
    }

    /// The usual frame's ``ScannedFrame``, or nil (see the type's comment). The caller has
    /// checked the frame's length.
    static func scan(_ frame: UnsafeRawBufferPointer, dialect: Dialect, maxDepth: Int) -> ScannedFrame? {
        var result = ScannedFrame(kind: .commMsg, buffers: BufferList(), msgIDToken: nil)
        return scan(frame, dialect: dialect, maxDepth: maxDepth, into: &result) ? result : nil
    }

    /// ``scan(_:dialect:maxDepth:)`` writing into `result` (all of it when it returns true),
    /// so the frame is not copied on its way out.
    @inline(__always)
    static func scan(_ frame: UnsafeRawBufferPointer, dialect: Dialect, maxDepth: Int, into result: inout ScannedFrame) -> Bool {
        guard maxDepth >= 2 else { return false }
        var s = JSONScanner(frame, maxDepth: maxDepth)
        do throws(WireError) {
            if try commonCommMsg(&s, into: &result) { return true }
            s = JSONScanner(frame, maxDepth: maxDepth) // afresh: the attempt may have counted a line break
            return try read(&s, dialect: dialect, into: &result)
        } catch {
            return false
        }
    }

    /// Whether the `count` bytes at `p` are the ones whose little-endian words at `offsets` are
    /// `words` (the offsets cover all `count` bytes; the caller has checked they are there).
    @inline(__always)
    private static func bytes(_ s: JSONScanner, at p: Int, _ words: (UInt64, UInt64, UInt64), at offsets: (Int, Int, Int)) -> Bool {
        word(s, p &+ offsets.0) == words.0 && word(s, p &+ offsets.1) == words.1 && word(s, p &+ offsets.2) == words.2
    }

    /// The commonest frame of all, a front end's comm_msg in the order widget front ends write
    /// it, with no whitespace: `{"header":{"msg_id":ID,"msg_type":"comm_msg"},"content":
    /// {"comm_id":ID,"data":{...}}}`, compared piece by piece as words. False (with `s` and
    /// `result` to be reset or overwritten) at the first byte that differs; the walk in
    /// ``read(_:dialect:into:)`` then reads the frame from its start.
    @inline(__always)
    private static func commonCommMsg(_ s: inout JSONScanner, into result: inout ScannedFrame) throws(WireError) -> Bool {
        let n = s.count
        // {"header":{"msg_id":
        guard n >= 64, bytes(s, at: 0, (0x7265_6461_6568_227B, 0x5F67_736D_227B_3A22, 0x3A22_6469_5F67_736D), at: (0, 8, 12)),
              s.base[20] == UInt8(ascii: "\"") else { return false }
        s.pos = 20
        let msgID = try s.scanString()
        // ,"msg_type":"comm_msg"
        var p = s.pos
        guard p &+ 22 <= n, bytes(s, at: p, (0x7974_5F67_736D_222C, 0x3A22_6570_7974_5F67, 0x736D_5F6D_6D6F_6322), at: (0, 4, 12)),
              word(s, p &+ 14) == 0x2267_736D_5F6D_6D6F else { return false }
        p &+= 22
        // },"content":{"comm_id":
        guard p &+ 24 <= n, bytes(s, at: p, (0x6574_6E6F_6322_2C7D, 0x6F63_227B_3A22_746E, 0x3A22_6469_5F6D_6D6F), at: (0, 8, 15)),
              s.base[p &+ 23] == UInt8(ascii: "\"") else { return false }
        s.pos = p &+ 23
        let commID = try s.scanString()
        // ,"data":{
        p = s.pos
        guard p &+ 9 <= n, word(s, p) == 0x3A22_6174_6164_222C, s.base[p &+ 8] == UInt8(ascii: "{") else { return false }
        let dataStart = p &+ 8
        s.pos = dataStart
        try s.skipValue(enclosingDepth: 2)
        // }}
        p = s.pos
        guard p &+ 2 == n, s.base[p] == UInt8(ascii: "}"), s.base[p &+ 1] == UInt8(ascii: "}") else { return false }
        result.kind = .commMsg
        result.commID = commID
        result.targetName = nil
        result.data = ByteRange(start: dataStart, end: p)
        result.metadata = nil
        result.buffers = BufferList()
        result.msgIDToken = msgID.range
        result.hasLineBreak = s.sawLineBreak
        return true
    }

    private static func read(_ s: inout JSONScanner, dialect: Dialect, into result: inout ScannedFrame) throws(WireError) -> Bool {
        let none = StringToken(start: 0, end: 0, hasEscapes: false)
        var seen: UInt32 = 0
        var msgType = none, headerMsgType = none, headerMsgID = none, commID = none, targetName = none
        var targetNameIsString = false
        var targetModuleOK = true
        var data: ByteRange? = nil
        var metadata: ByteRange? = nil
        var buffers = BufferList()

        s.skipWhitespace()
        guard s.current == UInt8(ascii: "{") else { return false }
        guard enter(&s) else { return false }
        repeat {
            guard let member = name(s, in: 0), seen & member.bit == 0, colon(&s, after: member.end) else { return false }
            seen |= member.bit
            switch member.bit {
            case msgTypeBit:
                guard s.current == UInt8(ascii: "\"") else { return false }
                msgType = try s.scanString()
            case headerBit:
                guard s.current == UInt8(ascii: "{") else { return false }
                guard enter(&s) else { break }
                repeat {
                    guard let member = name(s, in: 1), seen & member.bit == 0, colon(&s, after: member.end),
                          s.current == UInt8(ascii: "\"") else { return false }
                    seen |= member.bit
                    if member.bit == headerMsgIDBit { headerMsgID = try s.scanString() } else { headerMsgType = try s.scanString() }
                } while try s.nextMember()
            case contentBit:
                guard s.current == UInt8(ascii: "{") else { return false }
                guard enter(&s) else { break }
                repeat {
                    guard let member = name(s, in: 2), seen & member.bit == 0, colon(&s, after: member.end) else { return false }
                    seen |= member.bit
                    switch member.bit {
                    case commIDBit:
                        guard s.current == UInt8(ascii: "\"") else { return false }
                        commID = try s.scanString()
                    case dataBit:
                        guard s.current == UInt8(ascii: "{") else { return false }
                        let start = s.pos
                        try s.skipValue(enclosingDepth: 2)
                        data = ByteRange(start: start, end: s.pos)
                    case targetNameBit:
                        if s.current == UInt8(ascii: "\"") {
                            targetName = try s.scanString()
                            targetNameIsString = true
                        } else {
                            try s.skipValue(enclosingDepth: 2)
                        }
                    default:
                        let b = s.current
                        targetModuleOK = b == UInt8(ascii: "\"") || b == UInt8(ascii: "n")
                        try s.skipValue(enclosingDepth: 2)
                    }
                } while try s.nextMember()
            case metadataBit:
                guard s.current == UInt8(ascii: "{") else { return false }
                let start = s.pos
                if start &+ 2 <= s.count, s.base[start &+ 1] == UInt8(ascii: "}") {
                    s.pos = start &+ 2
                } else {
                    try s.skipValue(enclosingDepth: 1)
                }
                metadata = ByteRange(start: start, end: s.pos)
            default:
                guard s.current == UInt8(ascii: "[") else { return false }
                guard try s.enterArray(depth: 2) else { break }
                repeat {
                    guard s.current == UInt8(ascii: "\""), let end = plainBuffer(s, into: &buffers) else { return false }
                    s.pos = end
                } while try s.nextElement()
            }
        } while try s.nextMember()
        try s.expectEnd("the end of the frame")

        // The message type: top-level and/or header, equal if both.
        let type: StringToken
        if seen & msgTypeBit != 0 {
            if seen & headerMsgTypeBit != 0, !s.tokensEqual(msgType, headerMsgType) { return false }
            type = msgType
        } else if seen & headerMsgTypeBit != 0 {
            type = headerMsgType
        } else {
            type = none
        }
        let kind: InboundKind
        if seen & (msgTypeBit | headerMsgTypeBit) == 0 {
            guard dialect == .shinywidgets else { return false }
            kind = .commMsg
        } else {
            guard !type.hasEscapes else { return false }
            let n = type.contentEnd &- type.contentStart
            guard n >= 8 else { return false }
            let w = word(s, type.contentStart)
            if n == 8, w == wCommMsg {
                kind = .commMsg
            } else if n == 9, w == wCommOpe, s.base[type.contentStart &+ 8] == UInt8(ascii: "n") {
                kind = .commOpen
            } else if n == 10, w == wCommClo, s.base[type.contentStart &+ 8] == UInt8(ascii: "s"),
                      s.base[type.contentStart &+ 9] == UInt8(ascii: "e") {
                kind = .commClose
            } else {
                return false
            }
        }
        // The content fields the comm messages need.
        guard seen & contentBit != 0, seen & commIDBit != 0 else { return false }
        if kind == .commOpen {
            guard commID.end &- commID.start > 2, targetNameIsString, targetModuleOK else { return false }
        }
        result.kind = kind
        result.commID = commID
        result.targetName = kind == .commOpen ? targetName : nil
        result.data = data
        result.metadata = metadata
        result.buffers = buffers
        result.msgIDToken = seen & headerMsgIDBit != 0 ? headerMsgID.range : nil
        result.hasLineBreak = s.sawLineBreak
        return true
    }

    /// At a buffer's opening quote: decodes the text up to the next `"` as strict base64 (which
    /// only plain JSON string content can be) and returns the offset after that quote; nil,
    /// with nothing appended, for anything else. The general walk's `decodePlainBuffer`.
    @inline(__always)
    private static func plainBuffer(_ s: borrowing JSONScanner, into buffers: inout BufferList) -> Int? {
        let start = s.pos &+ 1
        guard start < s.count, let quote = memchr(s.base + start, Int32(UInt8(ascii: "\"")), s.count &- start) else {
            return nil
        }
        let end = UnsafeRawPointer(s.base).distance(to: UnsafeRawPointer(quote))
        do {
            try buffers.appendDecoding(base64: UnsafeRawBufferPointer(start: s.base + start, count: end &- start))
        } catch {
            return nil
        }
        return end &+ 1
    }
}
