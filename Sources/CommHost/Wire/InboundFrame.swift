/// One parsed and validated inbound frame.
///
/// Ranges index the frame bytes given to ``FrameParser/parse(_:)``; nothing of `data`,
/// `metadata` or the message id is copied.
public struct InboundFrame: Sendable {
    /// The message.
    public var kind: InboundKind
    /// `content.comm_id`, decoded; `""` for `comm_info_request` and `commhost_stats_request`.
    public var commID: String
    /// `content.target_name`: required on `comm_open`, an optional filter on `comm_info_request`,
    /// nil otherwise.
    public var targetName: String?
    /// The raw text of `content.data` (a JSON object, exactly as received); nil means `{}`.
    public var data: ByteRange?
    /// The raw text of `metadata` (a JSON object, exactly as received); nil means `{}`.
    public var metadata: ByteRange?
    /// `buffers`, base64-decoded into one storage; empty when there are none.
    public var buffers: BufferList
    /// The raw JSON string token of `header.msg_id`, quotes included, to be written verbatim as
    /// `parent_header.msg_id` on replies; nil when the frame has none.
    public var msgIDToken: ByteRange?

    /// A frame with the given parts.
    public init(kind: InboundKind, commID: String = "", targetName: String? = nil,
                data: ByteRange? = nil, metadata: ByteRange? = nil, buffers: BufferList = [],
                msgIDToken: ByteRange? = nil) {
        self.kind = kind
        self.commID = commID
        self.targetName = targetName
        self.data = data
        self.metadata = metadata
        self.buffers = buffers
        self.msgIDToken = msgIDToken
    }
}
