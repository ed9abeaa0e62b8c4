/// The manifest's `limits`: bounds that keep one client from growing the
/// host without limit, on what clients send and what the host queues for
/// them. The one limits type: the manifest reads it, and the comm manager,
/// every session and its transport enforce it as read (the wire layer takes
/// its part, ``wire``). Every value is a positive integer.
public struct ManifestLimits: Sendable, Equatable {
    /// `max_frame_bytes`: the largest inbound frame accepted (and the largest
    /// frame a plugin may send), in bytes (default 64 MiB).
    public var maxFrameBytes: Int
    /// `max_depth`: the deepest JSON nesting accepted in a frame (default 256).
    public var maxDepth: Int
    /// `max_comms_per_session`: open comms one session may hold (default 100000).
    public var maxCommsPerSession: Int
    /// `outbound_high_water_bytes`: the soft outbound mark. While more than
    /// this many bytes are queued toward a session's client, a plugin's
    /// `send` and `open` return `COMMHOST_EAGAIN` and nothing goes out
    /// (default 8 MiB). Always below `maxOutboundBytes`.
    public var outboundHighWaterBytes: Int
    /// `max_outbound_bytes`: the hard outbound bound. A session whose client
    /// is not reading and has more than this many bytes queued is ended with
    /// a logged reason rather than growing memory (default `minimumOutboundBytes(maxFrameBytes:outboundHighWaterBytes:)`).
    public var maxOutboundBytes: Int
    /// `max_sessions`: sessions (socket connections) served at once; one
    /// more is refused with an error frame (default 1024).
    public var maxSessions: Int
    /// `handler_timeout_ms`: milliseconds a callback into a handler may run
    /// before it counts as hung, for targets that do not set their own
    /// (default 5000). A hung callback gets a process-isolated target's
    /// worker killed; an in-process one cannot be interrupted and is logged.
    public var handlerTimeoutMS: Int

    /// Limits with the given values (the defaults unless told otherwise);
    /// `maxOutboundBytes` left nil is derived from the frame and high-water
    /// values by `minimumOutboundBytes(maxFrameBytes:outboundHighWaterBytes:)`.
    public init(maxFrameBytes: Int = 64 << 20, maxDepth: Int = 256, maxCommsPerSession: Int = 100_000,
                outboundHighWaterBytes: Int = 8 << 20, maxOutboundBytes: Int? = nil, maxSessions: Int = 1024,
                handlerTimeoutMS: Int = 5000) {
        self.maxFrameBytes = maxFrameBytes
        self.maxDepth = maxDepth
        self.maxCommsPerSession = maxCommsPerSession
        self.outboundHighWaterBytes = outboundHighWaterBytes
        self.maxOutboundBytes = maxOutboundBytes
            ?? Self.minimumOutboundBytes(maxFrameBytes: maxFrameBytes, outboundHighWaterBytes: outboundHighWaterBytes)
        self.maxSessions = maxSessions
        self.handlerTimeoutMS = handlerTimeoutMS
    }

    /// The values used for keys the manifest leaves out.
    public static let defaults = ManifestLimits()

    /// The part the wire layer enforces.
    public var wire: WireLimits { WireLimits(maxFrameBytes: maxFrameBytes, maxDepth: maxDepth) }

    /// The room one outbound frame needs beyond its JSON: the envelope,
    /// ids and headers (64 KiB).
    public static let outboundEnvelopeBytes = 64 << 10

    /// The smallest hard outbound bound that still admits the reply to any
    /// admissible inbound frame once a plugin has filled the queue up to the
    /// high-water mark: `outboundHighWaterBytes + 2 * maxFrameBytes + 65536`.
    /// A plugin may send while the queue is at or below the mark, and one
    /// reply carries at most a frame's worth of JSON; the `shinywidgets`
    /// dialect escapes that JSON as a string, which at most doubles it, and
    /// 64 KiB (`outboundEnvelopeBytes`) covers the envelope, ids and headers.
    /// A bound below this could end a session whose client is reading, just
    /// for echoing a frame the host accepted. Saturates at `Int.max` (a
    /// bound no queue reaches) when the sum does not fit.
    public static func minimumOutboundBytes(maxFrameBytes: Int, outboundHighWaterBytes: Int) -> Int {
        let (doubled, overflowDoubling) = maxFrameBytes.multipliedReportingOverflow(by: 2)
        let (framed, overflowEnvelope) = doubled.addingReportingOverflow(outboundEnvelopeBytes)
        let (total, overflowMark) = framed.addingReportingOverflow(outboundHighWaterBytes)
        return overflowDoubling || overflowEnvelope || overflowMark ? Int.max : total
    }
}
