/// Writes outbound frames: each method appends exactly one complete frame, ending in `\n`, to a
/// byte array the caller owns (and may reuse across frames).
///
/// JSON the caller passes (`data`, `metadata`, reply content) goes out as the bytes given; it
/// must already have passed ``JSONValidator/validateObject(_:maxDepth:)``, and an empty buffer
/// stands for `{}`. The only change made to it: in a frame written directly (not inside a
/// string), line breaks between tokens become spaces, so the frame stays on one line. Strings
/// the encoder writes itself (comm ids, target names, error texts) are escaped. Room for a frame
/// is sized assuming that validation; unvalidated JSON with raw control characters could exceed
/// it, and then the encoder traps rather than write past the room.
///
/// `parent` is the raw `header.msg_id` token of the inbound frame being answered (quotes
/// included, ``InboundFrame/msgIDToken``) or nil; it becomes `parent_header.msg_id`.
///
/// Frame shapes:
/// - `jupyter` dialect, every message, and in both dialects `error`, `comm_info_reply` and
///   ``raw(into:msgType:contentJSON:parent:)``:
///   `{"msg_type":T,"header":{"msg_id":ID,"msg_type":T},"parent_header":{"msg_id":P} or {},
///   "metadata":M,"content":C,"buffers":[base64...]}`. `comm_open` content is `{"comm_id",
///   "target_name","target_module":null,"data"}`; `comm_msg`/`comm_close` content is
///   `{"comm_id","data"}`.
/// - `shinywidgets` dialect, `comm_open`/`comm_msg`/`comm_close`:
///   `{"type":"shinywidgets_comm_open"|"..._msg"|"..._close","message":"<text>"}` where the text
///   is the object py-shinywidgets' `ShinyComm._publish_msg` builds, in its key order:
///   `{"content":{"data":D,"comm_id":I[,"target_name":N,"target_module":null,"html_deps":[]]},
///   "metadata":M,"buffers":[...],"ident":"comm-"+I,"parent":{}}`; `parent` is always `{}`,
///   as ShinyComm sends it (DESIGN.md), so the inbound message id is not echoed in this form.
///
/// Outbound `header.msg_id` is `<8 hex digits>-<n>`: a prefix drawn at random when the encoder
/// is made and a counter, so ids are unique per encoder (use one encoder per session).
///
/// Each frame is written straight into `out`'s spare capacity (one size check, no per-token
/// `Array.append`), so encoding costs about as much as copying the frame's bytes.
public struct FrameEncoder: Sendable {
    /// The dialect comm frames are written in.
    public let dialect: Dialect
    /// Prefix of outbound message ids, already escaped for a JSON string.
    private let idPrefix: [UInt8]
    /// `{"msg_type":"comm_msg","header":{"msg_id":"` and the id prefix and `-`: the start of
    /// every `jupyter` comm_msg, written as one piece.
    private let commMsgHead: [UInt8]
    private var counter = DecimalCounter()

    /// An encoder with a random message-id prefix.
    public init(dialect: Dialect) {
        var generator = SystemRandomNumberGenerator()
        let value = UInt32.random(in: .min ... .max, using: &generator)
        let hex = Array("0123456789abcdef".utf8)
        self.init(dialect: dialect, idPrefix: (0..<8).map { hex[Int(value >> (28 - 4 * UInt32($0)) & 15)] })
    }

    /// An encoder whose message ids start with `msgIDPrefix` (escaped as needed), for callers
    /// that want ids tied to something of theirs, such as a session id.
    public init(dialect: Dialect, msgIDPrefix: String) {
        var escaped: [UInt8] = []
        var prefix = msgIDPrefix
        prefix.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            JSONWriter.append(to: &escaped, reserving: JSONWriter.escapedBound(raw.count, times: 1)) { $0.escape(raw, times: 1) }
        }
        self.init(dialect: dialect, idPrefix: escaped)
    }

    private init(dialect: Dialect, idPrefix: [UInt8]) {
        self.dialect = dialect
        self.idPrefix = idPrefix
        commMsgHead = Array("{\"msg_type\":\"comm_msg\",\"header\":{\"msg_id\":\"".utf8) + idPrefix + [UInt8(ascii: "-")]
    }

    /// Number of frames written so far in the `jupyter` form (each took one message id).
    public var messageIDsIssued: UInt64 { counter.value }

    // MARK: Comm frames

    /// Appends a `comm_open` for `commID` on `targetName`.
    ///
    /// `buffers` are borrowed byte views (an empty array allocates nothing); their bytes are
    /// base64-encoded straight into `out`, never copied first.
    public mutating func commOpen(into out: inout [UInt8], commID: String, targetName: String,
                                  data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
                                  buffers: [UnsafeRawBufferPointer],
                                  parent: UnsafeRawBufferPointer?) {
        comm(.open, into: &out, commID: commID, targetName: targetName, data: data,
             metadata: metadata, buffers: buffers, parent: parent)
    }

    /// Appends a `comm_msg` for `commID`. `dataIsOneLine` says the caller knows `data` holds
    /// no `\n` or `\r` (it comes from a frame the parser found none in), so it is copied as is.
    public mutating func commMsg(into out: inout [UInt8], commID: String,
                                 data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
                                 buffers: [UnsafeRawBufferPointer],
                                 parent: UnsafeRawBufferPointer?, dataIsOneLine: Bool = false) {
        guard dialect == .jupyter, buffers.isEmpty else {
            comm(.msg, into: &out, commID: commID, targetName: "", data: data,
                 metadata: metadata, buffers: buffers, parent: parent)
            return
        }
        var id = commID
        id.withUTF8 {
            jupyterCommMsg(into: &out, commID: UnsafeRawBufferPointer($0), data: data, metadata: metadata, parent: parent,
                           dataIsOneLine: dataIsOneLine)
        }
    }

    /// Appends a `comm_close` for `commID`.
    public mutating func commClose(into out: inout [UInt8], commID: String,
                                   data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
                                   buffers: [UnsafeRawBufferPointer],
                                   parent: UnsafeRawBufferPointer?) {
        comm(.close, into: &out, commID: commID, targetName: "", data: data,
             metadata: metadata, buffers: buffers, parent: parent)
    }

    // MARK: Replies (jupyter form in both dialects)

    /// Appends an `error` frame: content `{"ename","evalue","line"}`, `line` left out when nil.
    public mutating func error(into out: inout [UInt8], ename: String, evalue: String, line: Int?,
                               parent: UnsafeRawBufferPointer?) {
        var ename = ename
        var evalue = evalue
        ename.withUTF8 { name in
            evalue.withUTF8 { value in
                let bound = fixedBound(parent) + JSONWriter.escapedBound(name.count + value.count, times: 1) + 24
                JSONWriter.append(to: &out, reserving: bound) { w in
                    beginJupyter("error", &w, metadata: Self.none, parent: parent)
                    w.structure("{\"ename\":", .plain)
                    w.string(UnsafeRawBufferPointer(name), .plain)
                    w.structure(",\"evalue\":", .plain)
                    w.string(UnsafeRawBufferPointer(value), .plain)
                    if let line {
                        w.structure(",\"line\":", .plain)
                        w.integer(line)
                    }
                    w.structure("},\"buffers\":[]}\n", .plain)
                }
            }
        }
    }

    /// Appends a `comm_info_reply`: content `{"status":"ok","comms":{id:{"target_name":name}}}`.
    /// Ids are written in the order given and should be unique.
    public mutating func commInfoReply(into out: inout [UInt8], comms: [(commID: String, targetName: String)],
                                       parent: UnsafeRawBufferPointer?) {
        var bound = fixedBound(parent)
        for comm in comms {
            bound += JSONWriter.escapedBound(comm.commID.utf8.count + comm.targetName.utf8.count, times: 1) + 24
        }
        JSONWriter.append(to: &out, reserving: bound) { w in
            beginJupyter("comm_info_reply", &w, metadata: Self.none, parent: parent)
            w.structure("{\"status\":\"ok\",\"comms\":{", .plain)
            for (index, comm) in comms.enumerated() {
                if index > 0 { w.byte(UInt8(ascii: ",")) }
                Self.string(comm.commID, &w)
                w.structure(":{\"target_name\":", .plain)
                Self.string(comm.targetName, &w)
                w.byte(UInt8(ascii: "}"))
            }
            w.structure("}},\"buffers\":[]}\n", .plain)
        }
    }

    /// Appends a frame of any other type (such as a stats reply) with `contentJSON` (validated
    /// JSON object text; empty means `{}`) as its content, empty metadata and no buffers.
    public mutating func raw(into out: inout [UInt8], msgType: String, contentJSON: UnsafeRawBufferPointer,
                             parent: UnsafeRawBufferPointer?) {
        var type = msgType
        type.withUTF8 { typeUTF8 in
            let typeBytes = UnsafeRawBufferPointer(typeUTF8)
            let bound = fixedBound(parent) + 2 * JSONWriter.escapedBound(typeBytes.count, times: 1) + contentJSON.count
            JSONWriter.append(to: &out, reserving: bound) { w in
                beginJupyter(typeBytes, &w, metadata: Self.none, parent: parent)
                w.object(contentJSON, .plain)
                w.structure(",\"buffers\":[]}\n", .plain)
            }
        }
    }

    // MARK: Writing

    private enum CommKind {
        case open, msg, close
    }

    private static var none: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    /// Room for everything but the variable parts: structure, message id, parent token.
    @inline(__always)
    private func fixedBound(_ parent: UnsafeRawBufferPointer?) -> Int {
        // The longest fixed text (shinywidgets comm_open, escaped) is under 300 bytes; the
        // message id adds the prefix and up to 20 digits; the parent token may double when
        // escaped inside the shinywidgets message.
        400 + idPrefix.count + 2 * (parent?.count ?? 0)
    }

    private static func string(_ text: String, _ w: inout JSONWriter) {
        var text = text
        text.withUTF8 { w.string(UnsafeRawBufferPointer($0), .plain) }
    }

    private mutating func comm(_ kind: CommKind, into out: inout [UInt8], commID: String, targetName: String,
                               data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
                               buffers: [UnsafeRawBufferPointer], parent: UnsafeRawBufferPointer?) {
        var id = commID
        var target = targetName
        id.withUTF8 { idUTF8 in
            target.withUTF8 { targetUTF8 in
                let id = UnsafeRawBufferPointer(idUTF8)
                let target = UnsafeRawBufferPointer(targetUTF8)
                let jsonFactor = dialect == .jupyter ? 1 : 2
                var bound = fixedBound(parent) + jsonFactor * (data.count + metadata.count)
                bound += 2 * JSONWriter.escapedBound(id.count, times: 2) + JSONWriter.escapedBound(target.count, times: 2)
                for buffer in buffers { bound += Base64.encodedCount(of: buffer.count) + 8 }
                JSONWriter.append(to: &out, reserving: bound) { w in
                    switch dialect {
                    case .jupyter:
                        jupyterComm(kind, &w, commID: id, targetName: target, data: data,
                                    metadata: metadata, buffers: buffers, parent: parent)
                    case .shinywidgets:
                        shinyComm(kind, &w, commID: id, targetName: target, data: data,
                                  metadata: metadata, buffers: buffers, parent: parent)
                    }
                }
            }
        }
    }

    /// A `jupyter` comm_msg without buffers (the usual reply), the same bytes as
    /// ``jupyterComm(_:_:commID:targetName:data:metadata:buffers:parent:)`` writes, with the
    /// fixed text in as few pieces as it allows, written through one pointer after one check of
    /// the room (``JSONWriter/withRoom(_:_:)``): the head (fixed text and message-id prefix),
    /// the counter's digits, the parent token (a string token of a validated frame: no line
    /// break can be in it), `metadata`, the comm id (escaped; a short clean id as one word) and
    /// `data`.
    private mutating func jupyterCommMsg(into out: inout [UInt8], commID: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
                                         metadata: UnsafeRawBufferPointer, parent: UnsafeRawBufferPointer?, dataIsOneLine: Bool) {
        let bound = fixedBound(parent) + data.count + metadata.count + JSONWriter.escapedBound(commID.count, times: 1)
        counter.increment()
        JSONWriter.append(to: &out, reserving: bound) { w in
            let emptyMetadata = metadata.isEmpty
                || (metadata.count == 2 && UInt16(littleEndian: metadata.loadUnaligned(as: UInt16.self)) == 0x7D7B) // {}
            if !dataIsOneLine || !emptyMetadata {
                // Text that may hold a line break goes through the writer's checked copies.
                jupyterCommMsgPieces(&w, commID: commID, data: data, metadata: metadata, parent: parent, dataIsOneLine: dataIsOneLine)
                return
            }
            w.withRoom(bound) { start in
                var p = start
                commMsgHead.withUnsafeBytes { p = JSONWriter.put($0, at: p) }
                p = counter.put(at: p)
                // `metadata` here is empty or exactly `{}` (the check above).
                if let parent {
                    p = JSONWriter.put("\",\"msg_type\":\"comm_msg\"},\"parent_header\":{\"msg_id\":", at: p)
                    p = JSONWriter.put(parent, at: p)
                    p = JSONWriter.put("},\"metadata\":{},\"content\":{\"comm_id\":\"", at: p)
                } else {
                    p = JSONWriter.put("\",\"msg_type\":\"comm_msg\"},\"parent_header\":{},\"metadata\":{},\"content\":{\"comm_id\":\"", at: p)
                }
                p = JSONWriter.putEscaped(commID, at: p)
                p = JSONWriter.put("\",\"data\":", at: p)
                if data.isEmpty {
                    p = JSONWriter.put("{}", at: p)
                } else {
                    p = JSONWriter.put(data, at: p)
                }
                p = JSONWriter.put("},\"buffers\":[]}\n", at: p)
                return start.distance(to: p)
            }
        }
    }

    /// ``jupyterCommMsg(into:commID:data:metadata:parent:dataIsOneLine:)`` piece by piece, for
    /// `data` or `metadata` that may hold a line break.
    private func jupyterCommMsgPieces(_ w: inout JSONWriter, commID: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
                                      metadata: UnsafeRawBufferPointer, parent: UnsafeRawBufferPointer?, dataIsOneLine: Bool) {
        w.bytes(commMsgHead)
        counter.write(&w)
        w.structure("\",\"msg_type\":\"comm_msg", .plain)
        Self.jupyterParentAndMetadata(&w, metadata: metadata, parent: parent)
        w.structure("{\"comm_id\":\"", .plain)
        w.escape(commID, times: 1)
        w.structure("\",\"data\":", .plain)
        w.object(data, .plain, oneLine: dataIsOneLine)
        w.structure("},\"buffers\":[]}\n", .plain)
    }

    private mutating func jupyterComm(_ kind: CommKind, _ w: inout JSONWriter, commID: UnsafeRawBufferPointer,
                                      targetName: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
                                      metadata: UnsafeRawBufferPointer, buffers: [UnsafeRawBufferPointer],
                                      parent: UnsafeRawBufferPointer?) {
        switch kind {
        case .open: beginJupyter("comm_open", &w, metadata: metadata, parent: parent)
        case .msg: beginJupyter("comm_msg", &w, metadata: metadata, parent: parent)
        case .close: beginJupyter("comm_close", &w, metadata: metadata, parent: parent)
        }
        w.structure("{\"comm_id\":", .plain)
        w.string(commID, .plain)
        if kind == .open {
            w.structure(",\"target_name\":", .plain)
            w.string(targetName, .plain)
            w.structure(",\"target_module\":null,\"data\":", .plain)
        } else {
            w.structure(",\"data\":", .plain)
        }
        w.object(data, .plain)
        if buffers.isEmpty {
            w.structure("},\"buffers\":[]}\n", .plain)
            return
        }
        w.structure("},\"buffers\":[", .plain)
        for (index, buffer) in buffers.enumerated() {
            w.structure(index == 0 ? "\"" : ",\"", .plain)
            w.base64(buffer)
            w.byte(UInt8(ascii: "\""))
        }
        w.structure("]}\n", .plain)
    }

    private func shinyComm(_ kind: CommKind, _ w: inout JSONWriter, commID: UnsafeRawBufferPointer,
                           targetName: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
                           metadata: UnsafeRawBufferPointer,
                           buffers: [UnsafeRawBufferPointer],
                           parent: UnsafeRawBufferPointer?) {
        switch kind {
        case .open: w.structure("{\"type\":\"shinywidgets_comm_open\",\"message\":\"", .plain)
        case .msg: w.structure("{\"type\":\"shinywidgets_comm_msg\",\"message\":\"", .plain)
        case .close: w.structure("{\"type\":\"shinywidgets_comm_close\",\"message\":\"", .plain)
        }
        // From here to the closing quote of "message", everything is nested (escaped once more).
        w.structure("{\\\"content\\\":{\\\"data\\\":", .plain)
        w.object(data, .nested)
        w.structure(",\\\"comm_id\\\":", .plain)
        w.string(commID, .nested)
        if kind == .open {
            w.structure(",\\\"target_name\\\":", .plain)
            w.string(targetName, .nested)
            w.structure(",\\\"target_module\\\":null,\\\"html_deps\\\":[]", .plain)
        }
        w.structure("},\\\"metadata\\\":", .plain)
        w.object(metadata, .nested)
        w.structure(",\\\"buffers\\\":[", .plain)
        var first = true
        for buffer in buffers {
            w.structure(first ? "\\\"" : ",\\\"", .plain)
            w.base64(buffer)
            w.structure("\\\"", .plain)
            first = false
        }
        w.structure("],\\\"ident\\\":\\\"comm-", .plain)
        w.escape(commID, times: 2)
        // DESIGN.md: `parent` is always `{}`, as ShinyComm sends it.
        w.structure("\\\",\\\"parent\\\":{}}\"}\n", .plain)
    }

    /// Writes `{"msg_type":T,"header":{...},"parent_header":...,"metadata":M,"content":` and
    /// takes a message id. `type` is one of this file's literals, which need no escaping.
    private mutating func beginJupyter(_ type: StaticString, _ w: inout JSONWriter,
                                       metadata: UnsafeRawBufferPointer, parent: UnsafeRawBufferPointer?) {
        let typeText = UnsafeRawBufferPointer(start: type.utf8Start, count: type.utf8CodeUnitCount)
        w.structure("{\"msg_type\":\"", .plain)
        w.bytes(typeText)
        w.structure("\",\"header\":{\"msg_id\":\"", .plain)
        finishJupyterHead(typeText, &w, metadata: metadata, parent: parent)
    }

    /// ``beginJupyter(_:_:metadata:parent:)`` for a type given at run time (escaped).
    private mutating func beginJupyter(_ type: UnsafeRawBufferPointer, _ w: inout JSONWriter,
                                       metadata: UnsafeRawBufferPointer, parent: UnsafeRawBufferPointer?) {
        w.structure("{\"msg_type\":\"", .plain)
        w.escape(type, times: 1)
        w.structure("\",\"header\":{\"msg_id\":\"", .plain)
        finishJupyterHead(type, &w, metadata: metadata, parent: parent, escapeType: true)
    }

    private mutating func finishJupyterHead(_ type: UnsafeRawBufferPointer, _ w: inout JSONWriter,
                                            metadata: UnsafeRawBufferPointer, parent: UnsafeRawBufferPointer?,
                                            escapeType: Bool = false) {
        counter.increment()
        w.bytes(idPrefix)
        w.byte(UInt8(ascii: "-"))
        counter.write(&w)
        w.structure("\",\"msg_type\":\"", .plain)
        if escapeType { w.escape(type, times: 1) } else { w.bytes(type) }
        Self.jupyterParentAndMetadata(&w, metadata: metadata, parent: parent)
    }

    /// A `jupyter` frame from the closing quote of its `msg_type` to `"content":`: the
    /// header's end, the parent header (the parent's `msg_id` token, or `{}`) and the metadata.
    @inline(__always)
    private static func jupyterParentAndMetadata(_ w: inout JSONWriter, metadata: UnsafeRawBufferPointer,
                                                 parent: UnsafeRawBufferPointer?) {
        if let parent {
            w.structure("\"},\"parent_header\":{\"msg_id\":", .plain)
            w.json(parent, .plain)
            w.structure("},\"metadata\":", .plain)
        } else {
            w.structure("\"},\"parent_header\":{},\"metadata\":", .plain)
        }
        w.object(metadata, .plain)
        w.structure(",\"content\":", .plain)
    }
}

/// The message-id counter as a number and as its decimal text, which is incremented in place
/// (usually one digit changes) instead of converted anew for every frame.
private struct DecimalCounter {
    /// Frames counted so far.
    private(set) var value: UInt64 = 0
    /// The ASCII digits of `value`, left-aligned in 24 bytes (a UInt64 has at most 20), so they
    /// can be stored as three words and the pointer moved by `length`.
    private var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var length = 0

    /// Adds one. The usual step (the last digit is not a 9) is inlined; a carry goes out of line.
    @inline(__always)
    mutating func increment() {
        let n = length
        if n > 0 {
            let last = withUnsafeBytes(of: &text) { $0[n &- 1] }
            if last != UInt8(ascii: "9") {
                value &+= 1
                withUnsafeMutableBytes(of: &text) { $0[n &- 1] = last &+ 1 }
                return
            }
        }
        incrementCarrying()
    }

    @inline(never)
    private mutating func incrementCarrying() {
        value &+= 1
        let n = length
        let grew = withUnsafeMutableBytes(of: &text) { digits -> Bool in
            var i = n &- 1
            while i >= 0 {
                if digits[i] != UInt8(ascii: "9") {
                    digits[i] &+= 1
                    return false
                }
                digits[i] = UInt8(ascii: "0")
                i &-= 1
            }
            // All nines (or no digits yet): one more digit, 1 followed by zeros.
            digits[0] = UInt8(ascii: "1")
            if n > 0 { digits[n] = UInt8(ascii: "0") }
            return true
        }
        if grew { length &+= 1 }
    }

    /// Writes the digits at `p`, where room for 24 bytes is (it stores all three words);
    /// returns the pointer after the digits.
    @inline(__always)
    func put(at p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        let raw = UnsafeMutableRawPointer(p)
        raw.storeBytes(of: text.0, as: UInt64.self)
        raw.storeBytes(of: text.1, toByteOffset: 8, as: UInt64.self)
        raw.storeBytes(of: text.2, toByteOffset: 16, as: UInt64.self)
        return p + length
    }

    /// Writes the digits.
    func write(_ w: inout JSONWriter) {
        withUnsafeBytes(of: text) { digits in
            w.bytes(UnsafeRawBufferPointer(start: digits.baseAddress!, count: length))
        }
    }
}
