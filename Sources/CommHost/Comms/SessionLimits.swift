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
    /// Most sessions served at once (socket connections); one more is refused.
    public var maxSessions: Int

    /// The defaults: 64 MiB frames, depth 256, 100 000 comms, 64 MiB queued, 1024 sessions.
    public init(maxFrameBytes: Int = 64 << 20, maxDepth: Int = 256, maxCommsPerSession: Int = 100_000,
                maxOutboundBytes: Int = 64 << 20, maxSessions: Int = 1024) {
        self.maxFrameBytes = maxFrameBytes
        self.maxDepth = maxDepth
        self.maxCommsPerSession = maxCommsPerSession
        self.maxOutboundBytes = maxOutboundBytes
        self.maxSessions = maxSessions
    }

    /// The part the wire layer enforces.
    public var wire: WireLimits { WireLimits(maxFrameBytes: maxFrameBytes, maxDepth: maxDepth) }
}
