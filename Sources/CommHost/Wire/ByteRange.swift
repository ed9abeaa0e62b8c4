/// A half-open range `[start, end)` of byte offsets into one frame's bytes.
///
/// The parser hands out ranges instead of copies; they are valid for as long as the frame bytes
/// they index are.
public struct ByteRange: Hashable, Sendable {
    /// Offset of the first byte.
    public var start: Int
    /// Offset one past the last byte.
    public var end: Int

    /// The range `[start, end)`.
    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }

    /// Number of bytes in the range.
    public var count: Int { end - start }

    /// The bytes this range covers inside `frame`, the buffer it was produced from.
    @inline(__always)
    public func bytes(in frame: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        precondition(start >= 0 && start <= end && end <= frame.count, "ByteRange outside its frame")
        // The precondition is the whole check: no slice and its second range check, and inlined
        // (three calls a comm_msg). An empty frame may have no address; then the range is 0..<0.
        return UnsafeRawBufferPointer(start: frame.baseAddress.map { $0 + start }, count: end &- start)
    }
}
