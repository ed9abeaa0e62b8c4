/// What ``FrameReader`` found in its byte stream: a line to parse, or a line it skipped for
/// being too long.
public enum FrameEvent {
    /// One line: its bytes without the `\n` (and without a `\r` right before it), and its
    /// 1-based line number in the stream. The bytes are borrowed from the reader's buffer and
    /// are valid only during the call that receives them.
    case line(UnsafeRawBufferPointer, lineNumber: Int)
    /// A line longer than the reader's `maxFrameBytes`, skipped without being held in memory:
    /// its line number and how many bytes came before its `\n` (or before the end of the stream).
    case tooLong(lineNumber: Int, byteCount: Int)
}
