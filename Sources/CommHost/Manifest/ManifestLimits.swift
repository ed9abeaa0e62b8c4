/// The manifest's `limits`: bounds the host enforces on what clients send
/// and what it queues for them. Every value is a positive integer.
public struct ManifestLimits: Sendable, Equatable {
    /// `max_frame_bytes`: the largest inbound frame accepted, in bytes (default 64 MiB).
    public var maxFrameBytes: Int
    /// `max_depth`: the deepest JSON nesting accepted in a frame (default 256).
    public var maxDepth: Int
    /// `max_comms_per_session`: open comms one session may hold (default 100000).
    public var maxCommsPerSession: Int
    /// `max_outbound_bytes`: bytes one session may have queued toward its
    /// client before the host stops taking more (default 64 MiB).
    public var maxOutboundBytes: Int
    /// `max_sessions`: sessions (socket connections) served at once; one
    /// more is refused with an error frame (default 1024).
    public var maxSessions: Int

    /// Limits with the given values (the defaults unless told otherwise).
    public init(maxFrameBytes: Int = 64 << 20, maxDepth: Int = 256,
                maxCommsPerSession: Int = 100_000, maxOutboundBytes: Int = 64 << 20, maxSessions: Int = 1024) {
        self.maxFrameBytes = maxFrameBytes
        self.maxDepth = maxDepth
        self.maxCommsPerSession = maxCommsPerSession
        self.maxOutboundBytes = maxOutboundBytes
        self.maxSessions = maxSessions
    }

    /// The values used for keys the manifest leaves out.
    public static let defaults = ManifestLimits()
}
