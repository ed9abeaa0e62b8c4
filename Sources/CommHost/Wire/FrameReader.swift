#if canImport(Glibc)
import Glibc
#endif

/// Splits the bytes arriving on a file descriptor (a pipe, a file, a socket) into lines, the
/// frames of the NDJSON wire.
///
/// - A line ends at `\n`; one `\r` right before the `\n` is dropped too, so CRLF senders work.
/// - Lines are numbered from 1, counting every line, including the ones not delivered.
/// - An empty line, or one of only spaces, tabs and `\r`, is skipped without an event.
/// - A line whose bytes (after dropping the `\r`) exceed `maxFrameBytes` is reported as
///   ``FrameEvent/tooLong(lineNumber:byteCount:)`` once its `\n` arrives. Its bytes are
///   discarded as they come, so memory stays at most about `maxFrameBytes` plus one read chunk
///   however long the line is.
/// - At end of stream, a last line without `\n` is delivered like any other.
///
/// The reader owns one buffer, reused for every line (nothing is allocated per line); the
/// `UnsafeRawBufferPointer` in a ``FrameEvent/line(_:lineNumber:)`` points into it and is valid
/// only during the callback. The descriptor is borrowed: the reader never closes it.
///
/// Use ``run(_:)`` on a thread of its own (blocking), or ``readAvailable(_:)`` from an event
/// loop with a non-blocking descriptor; or ``fill()`` (the read alone, which blocks on a
/// blocking descriptor) then ``deliverBuffered(_:)`` (the lines it completed), to do something
/// between the two. One reader is used from one thread at a time.
public final class FrameReader {
    /// The descriptor read from.
    public let fileDescriptor: Int32
    /// Longest line delivered, in bytes, without its line ending.
    public let maxFrameBytes: Int
    /// Number of the last line seen (0 before the first).
    @exclusivity(unchecked) public private(set) var lineNumber = 0

    /// What one ``readAvailable(_:)`` call found.
    public enum ReadResult: Equatable, Sendable {
        /// Bytes arrived (every line they completed has been delivered); read again.
        case readSome
        /// The descriptor is non-blocking and has nothing to read now.
        case wouldBlock
        /// The stream ended; any last unterminated line has been delivered.
        case endOfStream
    }

    // One thread at a time uses a reader (see above), so the state below skips Swift's run-time
    // exclusivity check (`@exclusivity(unchecked)`: a `swift_beginAccess`, about 75
    // instructions, on every read).
    private let chunkBytes: Int
    private let capacityLimit: Int
    @exclusivity(unchecked) private var buffer: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var capacity: Int
    /// Unconsumed bytes are `[start, end)` of the buffer; `[start, scanned)` holds no `\n`
    /// (what is past `scanned` has not been looked at: a ``fill()`` not yet delivered).
    @exclusivity(unchecked) private var start = 0
    @exclusivity(unchecked) private var end = 0
    @exclusivity(unchecked) private var scanned = 0
    /// True while discarding the rest of a too-long line; `skippedBytes` counts what went.
    @exclusivity(unchecked) private var skipping = false
    @exclusivity(unchecked) private var skippedBytes = 0
    @exclusivity(unchecked) private var ended = false

    /// A reader over `fileDescriptor`, reading at least `readChunkBytes` at a time (both sizes
    /// are raised to at least 1).
    public init(fileDescriptor: Int32, maxFrameBytes: Int = WireLimits().maxFrameBytes,
                readChunkBytes: Int = 64 << 10) {
        let maxFrameBytes = max(1, maxFrameBytes)
        let readChunkBytes = max(1, readChunkBytes)
        self.fileDescriptor = fileDescriptor
        self.maxFrameBytes = maxFrameBytes
        self.chunkBytes = readChunkBytes
        // A pending line is at most maxFrameBytes + 1 bytes (room for its '\r') before it is
        // dropped, and a read needs chunkBytes of room after it.
        self.capacityLimit = maxFrameBytes + 1 + readChunkBytes
        self.capacity = min(readChunkBytes * 2, capacityLimit)
        self.buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        buffer.deallocate()
    }

    /// Reads until the end of the stream, handing each event to `body` in stream order.
    /// Waits with `poll(2)` when a non-blocking descriptor has nothing to read. Errors thrown
    /// by `body` stop the reading and are rethrown; lines already buffered stay buffered for a
    /// later call.
    public func run(_ body: (FrameEvent) throws -> Void) throws {
        while true {
            switch try readAvailable(body) {
            case .readSome:
                continue
            case .endOfStream:
                return
            case .wouldBlock:
                try waitUntilReadable()
            }
        }
    }

    /// Does one `read(2)` (retrying on `EINTR`) and hands every line it completed to `body`.
    /// At end of stream, delivers a last unterminated line. Throws ``FrameReaderError`` when the
    /// read fails, or what `body` throws.
    public func readAvailable(_ body: (FrameEvent) throws -> Void) throws -> ReadResult {
        let result = try fill()
        try deliverBuffered(body)
        return result
    }

    /// Does one `read(2)` (retrying on `EINTR`) into the buffer, delivering nothing: on a
    /// blocking descriptor it waits until bytes arrive or the stream ends. What it read is
    /// handed out by the next ``deliverBuffered(_:)`` (so is a last unterminated line once it
    /// returned `.endOfStream`). Throws ``FrameReaderError`` when the read fails.
    public func fill() throws(FrameReaderError) -> ReadResult {
        if ended { return .endOfStream }
        makeRoom()
        var n: Int
        repeat {
            n = Glibc.read(fileDescriptor, buffer + end, capacity - end)
        } while n < 0 && Errno.current == .interrupted
        if n < 0 {
            let failure = Errno.current
            if failure == .wouldBlock { return .wouldBlock }
            throw .readFailed(fileDescriptor: fileDescriptor, errno: failure.rawValue)
        }
        if n == 0 {
            ended = true
            return .endOfStream
        }
        end += n
        return .readSome
    }

    /// Hands `body` every line the reads so far completed and it has not been given, in stream
    /// order; after end of stream, the last unterminated line too. Errors `body` throws stop the
    /// delivery and are rethrown; the lines not yet delivered stay for the next call.
    public func deliverBuffered(_ body: (FrameEvent) throws -> Void) throws {
        try deliverLines(body)
        if ended { try finishStream(body) }
    }

    // MARK: Lines

    private func deliverLines(_ body: (FrameEvent) throws -> Void) throws {
        while scanned < end, let found = memchr(buffer + scanned, 0x0A, end - scanned) {
            let newline = buffer.distance(to: found)
            lineNumber += 1
            let lineStart = start
            start = newline + 1
            scanned = start
            if skipping {
                let total = skippedBytes + (newline - lineStart)
                skipping = false
                skippedBytes = 0
                try body(.tooLong(lineNumber: lineNumber, byteCount: total))
            } else {
                try deliver(from: lineStart, to: newline, body)
            }
        }
        scanned = end
        let pending = end - start
        if skipping {
            skippedBytes += pending
            start = end
        } else if pending > maxFrameBytes + 1 {
            skipping = true
            skippedBytes = pending
            start = end
        }
    }

    private func finishStream(_ body: (FrameEvent) throws -> Void) throws {
        if skipping {
            lineNumber += 1
            let total = skippedBytes + (end - start)
            skipping = false
            skippedBytes = 0
            start = end
            try body(.tooLong(lineNumber: lineNumber, byteCount: total))
        } else if end > start {
            lineNumber += 1
            let lineStart = start
            start = end
            try deliver(from: lineStart, to: end, body)
        }
    }

    /// Hands `[from, to)` (a line without its `\n`) to `body`, or skips it.
    private func deliver(from: Int, to: Int, _ body: (FrameEvent) throws -> Void) throws {
        let bytes = buffer.assumingMemoryBound(to: UInt8.self)
        var last = to
        if last > from, bytes[last - 1] == 0x0D { last -= 1 }
        if last - from > maxFrameBytes {
            try body(.tooLong(lineNumber: lineNumber, byteCount: to - from))
            return
        }
        var i = from
        while i < last, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0D { i += 1 }
        if i == last { return }
        try body(.line(UnsafeRawBufferPointer(start: buffer + from, count: last - from), lineNumber: lineNumber))
    }

    // MARK: Buffer

    /// Ensures at least `chunkBytes` of room after `end`: first by moving the pending bytes to
    /// the front, then by growing (never past `capacityLimit`).
    private func makeRoom() {
        if start == end {
            start = 0
            end = 0
            scanned = 0
        }
        guard capacity - end < chunkBytes else { return }
        if start > 0 {
            memmove(buffer, buffer + start, end - start)
            end -= start
            scanned -= start
            start = 0
        }
        guard capacity - end < chunkBytes else { return }
        let newCapacity = min(max(capacity * 2, end + chunkBytes), capacityLimit)
        let newBuffer = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBuffer.copyMemory(from: buffer, byteCount: end)
        buffer.deallocate()
        buffer = newBuffer
        capacity = newCapacity
    }

    private func waitUntilReadable() throws {
        var entry = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        while poll(&entry, 1, -1) < 0 {
            let failure = Errno.current
            if failure != .interrupted { throw FrameReaderError.readFailed(fileDescriptor: fileDescriptor, errno: failure.rawValue) }
        }
    }
}
