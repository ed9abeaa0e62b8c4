/// One parsed and validated inbound frame whose strings are still tokens in the frame bytes:
/// what ``FrameParser/scan(_:)`` returns.
///
/// The session looks a `comm_msg`'s comm up by the raw bytes of its id (``withCommID(in:_:)``),
/// so the message on the hot path builds no `String`; every other frame becomes an
/// ``InboundFrame`` (``inbound(in:)``). Ranges and tokens index the scanned frame's bytes.
struct ScannedFrame: Equatable {
    /// The message.
    var kind: InboundKind
    /// The `content.comm_id` token; nil for `comm_info_request` and `commhost_stats_request`.
    var commID: StringToken?
    /// The `content.target_name` token: required on `comm_open`, an optional filter on
    /// `comm_info_request`, nil otherwise.
    var targetName: StringToken?
    /// The raw text of `content.data`; nil means `{}`.
    var data: ByteRange?
    /// The raw text of `metadata`; nil means `{}`.
    var metadata: ByteRange?
    /// `buffers`, base64-decoded into one storage; empty when there are none.
    var buffers: BufferList
    /// The raw JSON string token of `header.msg_id`, quotes included.
    var msgIDToken: ByteRange?
    /// Whether the frame holds a `\n` or `\r` (whitespace between tokens); when false, its
    /// `data` and `metadata` can be written into a frame as they are, with no look for one.
    var hasLineBreak = false

    /// Calls `body` with the UTF-8 bytes of the comm id (escapes decoded; empty when there is none).
    func withCommID<R>(in frame: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let commID else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        if commID.hasEscapes {
            return JSONScanner(frame, maxDepth: 0).decodedBytes(commID).withUnsafeBytes(body)
        }
        return body(UnsafeRawBufferPointer(rebasing: frame[commID.contentStart..<commID.contentEnd]))
    }

    /// The comm id, decoded; `""` when there is none.
    func commIDString(in frame: UnsafeRawBufferPointer) -> String {
        commID.map { JSONScanner(frame, maxDepth: 0).string($0) } ?? ""
    }

    /// The frame with its strings decoded.
    func inbound(in frame: UnsafeRawBufferPointer) -> InboundFrame {
        let s = JSONScanner(frame, maxDepth: 0)
        return InboundFrame(kind: kind, commID: commIDString(in: frame), targetName: targetName.map { s.string($0) },
                            data: data, metadata: metadata, buffers: buffers, msgIDToken: msgIDToken)
    }
}
