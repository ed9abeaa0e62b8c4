/// Bounds that keep one client from growing the host without limit.
public struct SessionLimits: Sendable, Equatable {
    /// Longest inbound frame (and longest frame a plugin may send), in bytes.
    public var maxFrameBytes: Int
    /// Deepest JSON nesting accepted.
    public var maxDepth: Int
    /// Most comms open at once in one session.
    public var maxCommsPerSession: Int
    /// Most bytes waiting to be written to one client; past it the session
    /// is ended with a logged reason rather than growing memory.
    public var maxOutboundBytes: Int
    /// Queued bytes above which a plugin's send or open is refused with
    /// `COMMHOST_EAGAIN` (backpressure) until the client catches up.
    public var outboundHighWaterBytes: Int
    /// Most sessions served at once (socket connections); one more is refused.
    public var maxSessions: Int

    /// The defaults: 64 MiB frames, depth 256, 100 000 comms, 8 MiB high
    /// water, room for that plus one frame's reply queued, 1024 sessions.
    public init(maxFrameBytes: Int = 64 << 20, maxDepth: Int = 256, maxCommsPerSession: Int = 100_000,
                maxOutboundBytes: Int? = nil, outboundHighWaterBytes: Int = 8 << 20, maxSessions: Int = 1024) {
        self.maxFrameBytes = maxFrameBytes
        self.maxDepth = maxDepth
        self.maxCommsPerSession = maxCommsPerSession
        self.maxOutboundBytes = maxOutboundBytes
            ?? ManifestLimits.minimumOutboundBytes(maxFrameBytes: maxFrameBytes, outboundHighWaterBytes: outboundHighWaterBytes)
        self.outboundHighWaterBytes = outboundHighWaterBytes
        self.maxSessions = maxSessions
    }

    /// The part the wire layer enforces.
    public var wire: WireLimits { WireLimits(maxFrameBytes: maxFrameBytes, maxDepth: maxDepth) }
}
