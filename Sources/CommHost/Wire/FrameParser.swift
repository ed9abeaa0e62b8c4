import Glibc

/// Reads one inbound frame (one line, without its `\n`) into an ``InboundFrame``.
///
/// One pass over the bytes, no JSON values built: the envelope is walked member by member with
/// the same scanner ``JSONValidator`` uses, `data` and `metadata` come back as ranges of the
/// exact bytes received, and only `comm_id`, `target_name` and the buffers are copied out.
///
/// What is accepted (both dialects):
/// - A JSON object. `msg_type` at top level and/or in `header.msg_type`; at least one, equal if
///   both. In the `shinywidgets` dialect a frame with neither is a `shinywidgets_comm_send`
///   payload and is read as `comm_msg`.
/// - `header`: optional object; `header.msg_id` optional string. `content`: object, required
///   except for `comm_info_request` and `commhost_stats_request`. `metadata`: optional object.
///   `buffers`: optional array of strict base64 strings.
/// - `content` fields: `comm_open` needs `comm_id` (non-empty string) and `target_name`
///   (string), and may have `data` (object) and `target_module` (string or null); `comm_msg`
///   and `comm_close` need `comm_id` (string) and may have `data`; `comm_info_request` may have
///   `target_name` (string).
/// - Other members anywhere are allowed and only checked to be JSON. A member name repeated in
///   the frame object, `header` or `content` is an error.
///
/// Which error wins when a frame has several: `FrameTooLong`; then anything that makes the bytes
/// not JSON (`InvalidJSON`, `InvalidUTF8`, `DepthLimit`), wherever it is; then the first envelope
/// problem in document order (`DuplicateKey`, a mistyped envelope member, `InvalidBase64`); then
/// a missing, disagreeing or unknown `msg_type`; then the content fields of that message type.
public struct FrameParser: Sendable {
    /// How inbound frames are shaped.
    public let dialect: Dialect
    /// Bounds on frame size and nesting.
    public let limits: WireLimits

    /// A parser for one dialect and set of limits.
    public init(dialect: Dialect, limits: WireLimits = WireLimits()) {
        self.dialect = dialect
        self.limits = limits
    }

    /// Parses and validates one frame. Ranges in the result index `frame`.
    public func parse(_ frame: UnsafeRawBufferPointer) throws(WireError) -> InboundFrame {
        try scan(frame).inbound(in: frame)
    }

    /// Parses and validates one frame as ``parse(_:)`` does, leaving its strings as tokens.
    ///
    /// The usual frame takes ``UsualFrame``'s straight-line walk; anything else (and every frame
    /// that walk declines, every refused one included) takes the general walk, which decides
    /// every error.
    func scan(_ frame: UnsafeRawBufferPointer) throws(WireError) -> ScannedFrame {
        guard frame.count <= limits.maxFrameBytes else {
            throw WireError(.frameTooLong, "frame is \(frame.count) bytes; the limit is \(limits.maxFrameBytes)")
        }
        var result = ScannedFrame(kind: .commMsg, buffers: BufferList(), msgIDToken: nil)
        if UsualFrame.scan(frame, dialect: dialect, maxDepth: limits.maxDepth, into: &result) { return result }
        return try scanGeneral(frame)
    }

    /// ``scan(_:)`` without the fast path: the general walk alone (the caller has checked the
    /// frame's length). Tests run it beside ``UsualFrame`` to check they agree.
    func scanGeneral(_ frame: UnsafeRawBufferPointer) throws(WireError) -> ScannedFrame {
        var scan = FrameScan(scanner: JSONScanner(frame, maxDepth: limits.maxDepth))
        try scan.readEnvelope()
        let kind = try scan.messageKind(dialect: dialect)
        var result = ScannedFrame(kind: kind, buffers: scan.buffers, msgIDToken: scan.headerMsgID?.token.range)
        result.metadata = scan.metadata
        result.hasLineBreak = scan.s.sawLineBreak
        switch kind {
        case .commOpen, .commMsg, .commClose:
            result.commID = scan.commID!.token
            if kind == .commOpen { result.targetName = scan.targetName!.token }
            if let member = scan.data { result.data = ByteRange(start: member.start, end: member.end) }
        case .commInfoRequest:
            result.targetName = scan.targetName?.token
        case .statsRequest:
            break
        }
        return result
    }

    /// For a frame `parse` refused: the raw `header.msg_id` token (quotes
    /// included) when the frame is JSON and names exactly one string
    /// `header.msg_id`, so the error frame can echo it as
    /// `parent_header.msg_id`; nil otherwise. Only for the error path: it
    /// scans the frame again.
    public func messageIDToken(ofRefused frame: UnsafeRawBufferPointer) -> ByteRange? {
        guard frame.count <= limits.maxFrameBytes else { return nil }
        var scan = FrameScan(scanner: JSONScanner(frame, maxDepth: limits.maxDepth))
        do {
            try scan.readEnvelope()
        } catch {
            return nil
        }
        guard !scan.headerMsgIDRepeated, let id = scan.headerMsgID, id.kind == .string else { return nil }
        return id.token.range
    }

    /// Parses and validates one frame held in an array.
    public func parse(_ frame: [UInt8]) throws(WireError) -> InboundFrame {
        let result: Result<InboundFrame, WireError> = frame.withUnsafeBytes { raw in
            Result { () throws(WireError) in try parse(raw) }
        }
        return try result.get()
    }
}

/// A member value the parser recorded: its kind and where it is.
private struct Member {
    var kind: JSONKind
    var start: Int
    var end: Int
    /// For strings: the token.
    var token: StringToken { StringToken(start: start, end: end, hasEscapes: hasEscapes) }
    var hasEscapes: Bool = false
}

/// The state of one parse: the scanner and what was found so far.
private struct FrameScan {
    var s: JSONScanner
    /// The first envelope problem in document order; thrown only once the bytes are known to be
    /// JSON, so a frame that is not JSON is always reported as such.
    var firstProblem: WireError? = nil

    var msgType: Member? = nil
    var headerMsgType: Member? = nil
    var headerMsgID: Member? = nil
    /// `header.msg_id` appeared more than once, so no one id can be echoed.
    var headerMsgIDRepeated = false
    var hasContent = false
    var commID: Member? = nil
    var targetName: Member? = nil
    var data: Member? = nil
    var targetModule: Member? = nil
    var metadata: ByteRange? = nil
    var buffers = BufferList()

    init(scanner: JSONScanner) { s = scanner }

    mutating func note(_ problem: @autoclosure () -> WireError) {
        if firstProblem == nil { firstProblem = problem() }
    }

    mutating func noteDuplicate(_ path: String) {
        note(WireError(.duplicateKey, "\(path): member appears more than once; send each member once"))
    }

    mutating func noteWrongType(_ path: String, expected: String, got kind: JSONKind?) {
        note(WireError(.invalidFrame, "\(path): expected \(expected), got \(kind?.name ?? "nothing")"))
    }

    // MARK: Walking the envelope

    mutating func readEnvelope() throws(WireError) {
        s.skipWhitespace()
        guard s.current == UInt8(ascii: "{") else {
            let kind = s.currentKind
            try s.skipValue(enclosingDepth: 0)
            try s.expectEnd("the end of the frame")
            throw WireError(.invalidFrame, "frame: expected a JSON object, got \(kind?.name ?? "nothing")")
        }
        var seen: UInt8 = 0
        var others = MemberNames()
        if try s.enterObject(depth: 1) {
            repeat {
                let key = try s.readKey()
                let bit: UInt8
                if s.token(key, is: "msg_type") { bit = 1 }
                else if s.token(key, is: "content") { bit = 2 }
                else if s.token(key, is: "header") { bit = 4 }
                else if s.token(key, is: "metadata") { bit = 8 }
                else if s.token(key, is: "buffers") { bit = 16 }
                else {
                    if !others.insert(key, scanner: s) { noteDuplicate(s.displayString(key)) }
                    try s.skipValue(enclosingDepth: 1)
                    continue
                }
                if seen & bit != 0 {
                    noteDuplicate(s.displayString(key))
                    try s.skipValue(enclosingDepth: 1)
                    continue
                }
                seen |= bit
                switch bit {
                case 1: msgType = try readString(path: "msg_type", enclosingDepth: 1)
                case 2: try readContent()
                case 4: try readHeader()
                case 8: try readMetadata()
                default: try readBuffers()
                }
            } while try s.nextMember()
        }
        try s.expectEnd("the end of the frame")
    }

    /// A member that must be a string: its token, or nil (with the problem noted).
    mutating func readString(path: @autoclosure () -> String, enclosingDepth: Int) throws(WireError) -> Member? {
        if s.current == UInt8(ascii: "\"") {
            let start = s.pos
            let token = try s.scanString()
            return Member(kind: .string, start: start, end: s.pos, hasEscapes: token.hasEscapes)
        }
        noteWrongType(path(), expected: "a string", got: s.currentKind)
        try s.skipValue(enclosingDepth: enclosingDepth)
        return nil
    }

    /// Any member value: its kind and extent.
    mutating func readAny(enclosingDepth: Int) throws(WireError) -> Member {
        let kind = s.currentKind
        let start = s.pos
        if kind == .string {
            let token = try s.scanString()
            return Member(kind: .string, start: start, end: s.pos, hasEscapes: token.hasEscapes)
        }
        try s.skipValue(enclosingDepth: enclosingDepth)
        // skipValue succeeded, so a value started here and `kind` is not nil.
        return Member(kind: kind!, start: start, end: s.pos)
    }

    mutating func readHeader() throws(WireError) {
        guard s.current == UInt8(ascii: "{") else {
            noteWrongType("header", expected: "an object", got: s.currentKind)
            try s.skipValue(enclosingDepth: 1)
            return
        }
        var seen: UInt8 = 0
        var others = MemberNames()
        guard try s.enterObject(depth: 2) else { return }
        repeat {
            let key = try s.readKey()
            let bit: UInt8
            if s.token(key, is: "msg_id") { bit = 1 }
            else if s.token(key, is: "msg_type") { bit = 2 }
            else {
                if !others.insert(key, scanner: s) { noteDuplicate("header." + s.displayString(key)) }
                try s.skipValue(enclosingDepth: 2)
                continue
            }
            if seen & bit != 0 {
                if bit == 1 { headerMsgIDRepeated = true }
                noteDuplicate("header." + s.displayString(key))
                try s.skipValue(enclosingDepth: 2)
                continue
            }
            seen |= bit
            if bit == 1 {
                headerMsgID = try readString(path: "header.msg_id", enclosingDepth: 2)
            } else {
                headerMsgType = try readString(path: "header.msg_type", enclosingDepth: 2)
            }
        } while try s.nextMember()
    }

    mutating func readContent() throws(WireError) {
        guard s.current == UInt8(ascii: "{") else {
            noteWrongType("content", expected: "an object", got: s.currentKind)
            try s.skipValue(enclosingDepth: 1)
            return
        }
        hasContent = true
        var seen: UInt8 = 0
        var others = MemberNames()
        guard try s.enterObject(depth: 2) else { return }
        repeat {
            let key = try s.readKey()
            let bit: UInt8
            if s.token(key, is: "comm_id") { bit = 1 }
            else if s.token(key, is: "data") { bit = 2 }
            else if s.token(key, is: "target_name") { bit = 4 }
            else if s.token(key, is: "target_module") { bit = 8 }
            else {
                if !others.insert(key, scanner: s) { noteDuplicate("content." + s.displayString(key)) }
                try s.skipValue(enclosingDepth: 2)
                continue
            }
            if seen & bit != 0 {
                noteDuplicate("content." + s.displayString(key))
                try s.skipValue(enclosingDepth: 2)
                continue
            }
            seen |= bit
            let value = try readAny(enclosingDepth: 2)
            switch bit {
            case 1: commID = value
            case 2: data = value
            case 4: targetName = value
            default: targetModule = value
            }
        } while try s.nextMember()
    }

    mutating func readMetadata() throws(WireError) {
        guard s.current == UInt8(ascii: "{") else {
            noteWrongType("metadata", expected: "an object", got: s.currentKind)
            try s.skipValue(enclosingDepth: 1)
            return
        }
        let start = s.pos
        try s.skipValue(enclosingDepth: 1)
        metadata = ByteRange(start: start, end: s.pos)
    }

    mutating func readBuffers() throws(WireError) {
        guard s.current == UInt8(ascii: "[") else {
            noteWrongType("buffers", expected: "an array of base64 strings", got: s.currentKind)
            try s.skipValue(enclosingDepth: 1)
            return
        }
        guard try s.enterArray(depth: 2) else { return }
        var index = 0
        repeat {
            if s.current == UInt8(ascii: "\""), firstProblem == nil, let end = decodePlainBuffer() {
                s.pos = end
            } else if s.current == UInt8(ascii: "\"") {
                let token = try s.scanString()
                if firstProblem == nil { decodeBuffer(token, index: index) }
            } else {
                noteWrongType("buffers[\(index)]", expected: "a base64 string", got: s.currentKind)
                try s.skipValue(enclosingDepth: 2)
            }
            index += 1
        } while try s.nextElement()
    }

    /// The usual buffer, checked and decoded in one pass over its text once `memchr` has found the
    /// next `"`: a string of nothing but base64 characters, decoded where it lies. Every text the strict decoder accepts is plain JSON string content
    /// (no escapes, quotes, control or non-ASCII bytes), so decoding what lies before the next `"`
    /// checks the string as well. Returns the offset after the closing quote; nil, with nothing
    /// appended, for any other string (escapes, a base64 error, no closing quote), which then
    /// takes the scanner and ``decodeBuffer(_:index:)`` and gets their errors.
    mutating func decodePlainBuffer() -> Int? {
        let start = s.pos + 1
        guard start < s.count, let quote = memchr(s.base + start, Int32(UInt8(ascii: "\"")), s.count - start) else {
            return nil
        }
        let end = UnsafeRawPointer(s.base).distance(to: UnsafeRawPointer(quote))
        do {
            try buffers.appendDecoding(base64: UnsafeRawBufferPointer(start: s.base + start, count: end - start))
        } catch {
            return nil
        }
        return end + 1
    }

    mutating func decodeBuffer(_ token: StringToken, index: Int) {
        do throws(Base64.DecodingError) {
            if token.hasEscapes {
                try buffers.appendDecoding(base64: s.decodedBytes(token))
            } else {
                let text = UnsafeRawBufferPointer(start: s.base + token.contentStart,
                                                  count: token.contentEnd - token.contentStart)
                try buffers.appendDecoding(base64: text)
            }
        } catch {
            note(WireError(.invalidBase64, "buffers[\(index)]: \(error.reason)"))
        }
    }

    // MARK: Deciding what the frame is

    /// The message the frame carries, once every field that message needs is known to be there
    /// with the right type (so the caller may unwrap them).
    mutating func messageKind(dialect: Dialect) throws(WireError) -> InboundKind {
        if let firstProblem { throw firstProblem }

        let typeMember: Member
        let typePath: String
        switch (msgType, headerMsgType) {
        case let (top?, header?):
            guard s.tokensEqual(top.token, header.token) else {
                throw WireError(.invalidFrame, "msg_type: \"\(s.displayString(top.token))\" disagrees with header.msg_type \"\(s.displayString(header.token))\"; send one message type")
            }
            typeMember = top
            typePath = "msg_type"
        case let (top?, nil):
            typeMember = top
            typePath = "msg_type"
        case let (nil, header?):
            typeMember = header
            typePath = "header.msg_type"
        case (nil, nil):
            guard dialect == .shinywidgets else {
                throw WireError(.invalidFrame, "msg_type: missing; give it at the top level or as header.msg_type")
            }
            try checkCommFields(.commMsg, typeName: "comm_msg")
            return .commMsg
        }

        let t = typeMember.token
        if s.token(t, is: "comm_msg") {
            try checkCommFields(.commMsg, typeName: "comm_msg")
            return .commMsg
        }
        if s.token(t, is: "comm_open") {
            try checkCommFields(.commOpen, typeName: "comm_open")
            return .commOpen
        }
        if s.token(t, is: "comm_close") {
            try checkCommFields(.commClose, typeName: "comm_close")
            return .commClose
        }
        if s.token(t, is: "comm_info_request") {
            if let targetName, targetName.kind != .string {
                throw WireError(.invalidFrame, "content.target_name: expected a string, got \(targetName.kind.name)")
            }
            return .commInfoRequest
        }
        if s.token(t, is: "commhost_stats_request") { return .statsRequest }
        throw WireError(.unknownMessageType, "\(typePath): unknown message type \"\(s.displayString(t))\"; expected comm_open, comm_msg, comm_close, comm_info_request or commhost_stats_request")
    }

    /// `comm_open`, `comm_msg` or `comm_close`: checks the content fields that kind needs.
    mutating func checkCommFields(_ kind: InboundKind, typeName: String) throws(WireError) {
        guard hasContent else {
            throw WireError(.invalidFrame, "content: missing; \(typeName) needs content with comm_id")
        }
        guard let commID else {
            throw WireError(.invalidFrame, "content.comm_id: missing; \(typeName) needs it")
        }
        guard commID.kind == .string else {
            throw WireError(.invalidFrame, "content.comm_id: expected a string, got \(commID.kind.name)")
        }
        if kind == .commOpen {
            guard commID.end &- commID.start > 2 else {
                throw WireError(.invalidFrame, "content.comm_id: must not be empty for comm_open")
            }
            guard let targetName else {
                throw WireError(.invalidFrame, "content.target_name: missing; comm_open needs it")
            }
            guard targetName.kind == .string else {
                throw WireError(.invalidFrame, "content.target_name: expected a string, got \(targetName.kind.name)")
            }
            if let targetModule, targetModule.kind != .string, targetModule.kind != .null {
                throw WireError(.invalidFrame, "content.target_module: expected a string or null, got \(targetModule.kind.name)")
            }
        }
        if let data, data.kind != .object {
            throw WireError(.invalidFrame, "content.data: expected an object, got \(data.kind.name)")
        }
    }
}
