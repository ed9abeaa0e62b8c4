/// Bounds the wire layer enforces on what a client sends.
public struct WireLimits: Sendable, Equatable {
    /// Longest accepted frame, in bytes, not counting its `\n` (default 64 MiB).
    public var maxFrameBytes: Int
    /// Most arrays and objects open at once, counted from the outermost value of the document
    /// being checked: the frame object itself is depth 1, its `content` 2, `content.data` 3
    /// (default 256).
    public var maxDepth: Int

    /// Limits with the given values (each raised to at least 1); the defaults are safe for
    /// untrusted clients.
    public init(maxFrameBytes: Int = 64 << 20, maxDepth: Int = 256) {
        self.maxFrameBytes = max(1, maxFrameBytes)
        self.maxDepth = max(1, maxDepth)
    }
}
