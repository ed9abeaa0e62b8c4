/// Writes outbound frames: each method appends exactly one complete frame, ending in `\n`, to a
/// byte array the caller owns (and may reuse across frames).
///
/// JSON the caller passes (`data`, `metadata`, reply content) goes out as the bytes given; it
/// must already have passed ``JSONValidator/validateObject(_:maxDepth:)``, and an empty buffer
/// stands for `{}`. The only change made to it: in a frame written directly (not inside a
/// string), line breaks between tokens become spaces, so the frame stays on one line. Strings
/// the encoder writes itself (comm ids, target names, error texts) are escaped.
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
///   "metadata":M,"buffers":[...],"ident":"comm-"+I,"parent":{}}`. ShinyComm always sends
///   `parent: {}`; here `parent` is `{"msg_id":P}` when there is an inbound message id to echo
///   (the same meaning as ipykernel's parent header), else `{}`.
///
/// Outbound `header.msg_id` is `<8 hex digits>-<n>`: a prefix drawn at random when the encoder
/// is made and a counter, so ids are unique per encoder (use one encoder per session).
public struct FrameEncoder: Sendable {
    /// The dialect comm frames are written in.
    public let dialect: Dialect
    /// Prefix of outbound message ids, ASCII, already JSON-safe.
    private let idPrefix: [UInt8]
    private var counter: UInt64 = 0

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
        prefix.withUTF8 { JSONOutput.escape(UnsafeRawBufferPointer($0), times: 1, to: &escaped) }
        self.init(dialect: dialect, idPrefix: escaped)
    }

    private init(dialect: Dialect, idPrefix: [UInt8]) {
        self.dialect = dialect
        self.idPrefix = idPrefix
    }

    /// Number of frames written so far in the `jupyter` form (each took one message id).
    public var messageIDsIssued: UInt64 { counter }

    // MARK: Comm frames

    /// Appends a `comm_open` for `commID` on `targetName`.
    ///
    /// `buffers` is any sequence of borrowed byte views (an array, or a lazy map over the ABI's
    /// buffer list), so nothing is copied before it is base64-encoded into `out`.
    public mutating func commOpen(into out: inout [UInt8], commID: String, targetName: String,
                                  data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
                                  buffers: some Sequence<UnsafeRawBufferPointer>,
                                  parent: UnsafeRawBufferPointer?) {
        comm(.open, into: &out, commID: commID, targetName: targetName, data: data,
             metadata: metadata, buffers: buffers, parent: parent)
    }

    /// Appends a `comm_msg` for `commID`.
    public mutating func commMsg(into out: inout [UInt8], commID: String,
                                 data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
                                 buffers: some Sequence<UnsafeRawBufferPointer>,
                                 parent: UnsafeRawBufferPointer?) {
        comm(.msg, into: &out, commID: commID, targetName: nil, data: data,
             metadata: metadata, buffers: buffers, parent: parent)
    }

    /// Appends a `comm_close` for `commID`.
    public mutating func commClose(into out: inout [UInt8], commID: String,
                                   data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
                                   buffers: some Sequence<UnsafeRawBufferPointer>,
                                   parent: UnsafeRawBufferPointer?) {
        comm(.close, into: &out, commID: commID, targetName: nil, data: data,
             metadata: metadata, buffers: buffers, parent: parent)
    }

    // MARK: Replies (jupyter form in both dialects)

    /// Appends an `error` frame: content `{"ename","evalue","line"}`, `line` left out when nil.
    public mutating func error(into out: inout [UInt8], ename: String, evalue: String, line: Int?,
                               parent: UnsafeRawBufferPointer?) {
        beginJupyter("error", into: &out, metadata: UnsafeRawBufferPointer(start: nil, count: 0), parent: parent)
        JSONOutput.structure("{\"ename\":", .plain, to: &out)
        JSONOutput.string(ename, .plain, to: &out)
        JSONOutput.structure(",\"evalue\":", .plain, to: &out)
        JSONOutput.string(evalue, .plain, to: &out)
        if let line {
            JSONOutput.structure(",\"line\":", .plain, to: &out)
            JSONOutput.integer(line, to: &out)
        }
        JSONOutput.structure("},\"buffers\":[]}\n", .plain, to: &out)
    }

    /// Appends a `comm_info_reply`: content `{"status":"ok","comms":{id:{"target_name":name}}}`.
    /// Ids are written in the order given and should be unique.
    public mutating func commInfoReply(into out: inout [UInt8], comms: [(commID: String, targetName: String)],
                                       parent: UnsafeRawBufferPointer?) {
        beginJupyter("comm_info_reply", into: &out, metadata: UnsafeRawBufferPointer(start: nil, count: 0), parent: parent)
        JSONOutput.structure("{\"status\":\"ok\",\"comms\":{", .plain, to: &out)
        for (index, comm) in comms.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONOutput.string(comm.commID, .plain, to: &out)
            JSONOutput.structure(":{\"target_name\":", .plain, to: &out)
            JSONOutput.string(comm.targetName, .plain, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        JSONOutput.structure("}},\"buffers\":[]}\n", .plain, to: &out)
    }

    /// Appends a frame of any other type (such as a stats reply) with `contentJSON` (validated
    /// JSON object text; empty means `{}`) as its content, empty metadata and no buffers.
    public mutating func raw(into out: inout [UInt8], msgType: String, contentJSON: UnsafeRawBufferPointer,
                             parent: UnsafeRawBufferPointer?) {
        var type = msgType
        type.withUTF8 { typeBytes in
            beginJupyter(UnsafeRawBufferPointer(typeBytes), into: &out,
                         metadata: UnsafeRawBufferPointer(start: nil, count: 0), parent: parent)
        }
        JSONOutput.object(contentJSON, .plain, to: &out)
        JSONOutput.structure(",\"buffers\":[]}\n", .plain, to: &out)
    }

    // MARK: Writing

    private enum CommKind {
        case open, msg, close
    }

    private mutating func comm(_ kind: CommKind, into out: inout [UInt8], commID: String, targetName: String?,
                               data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
                               buffers: some Sequence<UnsafeRawBufferPointer>, parent: UnsafeRawBufferPointer?) {
        var id = commID
        id.withUTF8 { idUTF8 in
            let id = UnsafeRawBufferPointer(idUTF8)
            out.reserveCapacity(out.count + 192 + 2 * id.count + data.count + metadata.count)
            switch dialect {
            case .jupyter:
                jupyterComm(kind, into: &out, commID: id, targetName: targetName, data: data,
                            metadata: metadata, buffers: buffers, parent: parent)
            case .shinywidgets:
                shinyComm(kind, into: &out, commID: id, targetName: targetName, data: data,
                          metadata: metadata, buffers: buffers, parent: parent)
            }
        }
    }

    private mutating func jupyterComm(_ kind: CommKind, into out: inout [UInt8], commID: UnsafeRawBufferPointer,
                                      targetName: String?, data: UnsafeRawBufferPointer,
                                      metadata: UnsafeRawBufferPointer,
                                      buffers: some Sequence<UnsafeRawBufferPointer>,
                                      parent: UnsafeRawBufferPointer?) {
        let type: StaticString = switch kind {
        case .open: "comm_open"
        case .msg: "comm_msg"
        case .close: "comm_close"
        }
        beginJupyter(UnsafeRawBufferPointer(start: type.utf8Start, count: type.utf8CodeUnitCount),
                     into: &out, metadata: metadata, parent: parent)
        JSONOutput.structure("{\"comm_id\":", .plain, to: &out)
        JSONOutput.string(commID, .plain, to: &out)
        if kind == .open {
            JSONOutput.structure(",\"target_name\":", .plain, to: &out)
            JSONOutput.string(targetName ?? "", .plain, to: &out)
            JSONOutput.structure(",\"target_module\":null", .plain, to: &out)
        }
        JSONOutput.structure(",\"data\":", .plain, to: &out)
        JSONOutput.object(data, .plain, to: &out)
        JSONOutput.structure("},\"buffers\":", .plain, to: &out)
        appendBuffers(buffers, into: &out)
        JSONOutput.structure("}\n", .plain, to: &out)
    }

    private func shinyComm(_ kind: CommKind, into out: inout [UInt8], commID: UnsafeRawBufferPointer,
                           targetName: String?, data: UnsafeRawBufferPointer,
                           metadata: UnsafeRawBufferPointer,
                           buffers: some Sequence<UnsafeRawBufferPointer>,
                           parent: UnsafeRawBufferPointer?) {
        switch kind {
        case .open: JSONOutput.structure("{\"type\":\"shinywidgets_comm_open\",\"message\":\"", .plain, to: &out)
        case .msg: JSONOutput.structure("{\"type\":\"shinywidgets_comm_msg\",\"message\":\"", .plain, to: &out)
        case .close: JSONOutput.structure("{\"type\":\"shinywidgets_comm_close\",\"message\":\"", .plain, to: &out)
        }
        JSONOutput.structure("{\"content\":{\"data\":", .nested, to: &out)
        JSONOutput.object(data, .nested, to: &out)
        JSONOutput.structure(",\"comm_id\":", .nested, to: &out)
        JSONOutput.string(commID, .nested, to: &out)
        if kind == .open {
            JSONOutput.structure(",\"target_name\":", .nested, to: &out)
            JSONOutput.string(targetName ?? "", .nested, to: &out)
            JSONOutput.structure(",\"target_module\":null,\"html_deps\":[]", .nested, to: &out)
        }
        JSONOutput.structure("},\"metadata\":", .nested, to: &out)
        JSONOutput.object(metadata, .nested, to: &out)
        JSONOutput.structure(",\"buffers\":", .nested, to: &out)
        // Base64 text and the brackets, commas and quotes around it: quotes need escaping here.
        var first = true
        JSONOutput.structure("[", .nested, to: &out)
        for buffer in buffers {
            JSONOutput.structure(first ? "\"" : ",\"", .nested, to: &out)
            Base64.encode(buffer, into: &out)
            JSONOutput.structure("\"", .nested, to: &out)
            first = false
        }
        JSONOutput.structure("],\"ident\":\"comm-", .nested, to: &out)
        JSONOutput.escape(commID, times: 2, to: &out)
        JSONOutput.structure("\",\"parent\":", .nested, to: &out)
        if let parent {
            JSONOutput.structure("{\"msg_id\":", .nested, to: &out)
            JSONOutput.json(parent, .nested, to: &out)
            JSONOutput.structure("}", .nested, to: &out)
        } else {
            JSONOutput.structure("{}", .nested, to: &out)
        }
        JSONOutput.structure("}", .nested, to: &out)
        JSONOutput.structure("\"}\n", .plain, to: &out)
    }

    /// Writes `{"msg_type":T,"header":{...},"parent_header":...,"metadata":M,"content":` and
    /// takes a message id.
    private mutating func beginJupyter(_ type: StaticString, into out: inout [UInt8],
                                       metadata: UnsafeRawBufferPointer, parent: UnsafeRawBufferPointer?) {
        beginJupyter(UnsafeRawBufferPointer(start: type.utf8Start, count: type.utf8CodeUnitCount),
                     into: &out, metadata: metadata, parent: parent)
    }

    private mutating func beginJupyter(_ type: UnsafeRawBufferPointer, into out: inout [UInt8],
                                       metadata: UnsafeRawBufferPointer, parent: UnsafeRawBufferPointer?) {
        counter &+= 1
        JSONOutput.structure("{\"msg_type\":", .plain, to: &out)
        JSONOutput.string(type, .plain, to: &out)
        JSONOutput.structure(",\"header\":{\"msg_id\":\"", .plain, to: &out)
        out.append(contentsOf: idPrefix)
        out.append(UInt8(ascii: "-"))
        JSONOutput.integer(counter, to: &out)
        JSONOutput.structure("\",\"msg_type\":", .plain, to: &out)
        JSONOutput.string(type, .plain, to: &out)
        JSONOutput.structure("},\"parent_header\":", .plain, to: &out)
        if let parent {
            JSONOutput.structure("{\"msg_id\":", .plain, to: &out)
            JSONOutput.json(parent, .plain, to: &out)
            out.append(UInt8(ascii: "}"))
        } else {
            JSONOutput.structure("{}", .plain, to: &out)
        }
        JSONOutput.structure(",\"metadata\":", .plain, to: &out)
        JSONOutput.object(metadata, .plain, to: &out)
        JSONOutput.structure(",\"content\":", .plain, to: &out)
    }

    /// `["<base64>",...]` at the plain level.
    private func appendBuffers(_ buffers: some Sequence<UnsafeRawBufferPointer>, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        var first = true
        for buffer in buffers {
            if !first { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            Base64.encode(buffer, into: &out)
            out.append(UInt8(ascii: "\""))
            first = false
        }
        out.append(UInt8(ascii: "]"))
    }
}
