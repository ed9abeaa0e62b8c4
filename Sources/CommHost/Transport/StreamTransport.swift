import Dispatch
import Glibc

/// Serves one session over a pair of byte streams (stdin/stdout, or one
/// connected socket): a reader on the calling thread feeds frames to the
/// session; a writer thread sends its output in the order it was issued.
public final class StreamTransport: @unchecked Sendable {
    // @unchecked: the descriptors are immutable; `writerDone` is a semaphore.
    private let session: Session
    private let input: Int32
    private let output: OutputDescriptor
    private let limits: ManifestLimits
    private let logger: Logger
    private let writerDone = DispatchSemaphore(value: 0)

    /// A transport reading frames from `input` and writing to `output`.
    public init(session: Session, input: Int32, output: Int32, limits: ManifestLimits, logger: Logger) {
        self.session = session
        self.input = input
        self.output = OutputDescriptor(output)
        self.limits = limits
        self.logger = logger
    }

    /// Starts the writer, then reads frames until end of input, a read
    /// error, or the session ending (its client fell too far behind, or no
    /// writer thread could be started).
    public func run() {
        do throws(Errno) {
            // Signalled once the writer holds nothing (not even this transport and its session).
            try HostThread.start(name: "writer-\(session.id)", { [self] in writeLoop() },
                                 afterwards: { [writerDone] in writerDone.signal() })
        } catch {
            logger.error("cannot start the session's writer thread; ending session",
                         [("session", .int(session.id)), ("error", .string("\(error)"))])
            session.end(cause: .sessionEnded)
            writerDone.signal()
            return
        }
        let reader = FrameReader(fileDescriptor: input, maxFrameBytes: limits.maxFrameBytes)
        let output = output
        session.setDirectWriter(limit: output.directLimit) { [output] in output.writeWithoutBlocking($0) }
        do {
            while true {
                // Read outside the batch, so frames plugin threads send while this thread waits go
                // out at once. The read itself waits (no poll first) unless the input is non-blocking.
                let result = try reader.fill()
                if result == .wouldBlock {
                    try waitUntilReadable()
                    continue
                }
                try session.handleBatch(directLimit: output.directLimit, write: output.writeWithoutBlocking) {
                    try reader.deliverBuffered { event in
                        switch event {
                        case .line(let bytes, let line):
                            session.receive(bytes, line: line)
                        case .tooLong(let line, let byteCount):
                            session.receiveTooLong(line: line, byteCount: byteCount)
                        }
                        if session.isEnded { throw SessionEnded() }
                    }
                }
                if result == .endOfStream { return }
            }
        } catch is SessionEnded {
            return
        } catch let error as FrameReaderError where error.errno == .connectionReset {
            // A socket client that went away without a clean shutdown: an ordinary end.
            logger.info("client disconnected", [("session", .int(session.id)), ("error", .string("\(error.errno)"))])
        } catch {
            logger.error("reading input failed", [("session", .int(session.id)), ("error", .string("\(error)"))])
        }
    }

    /// `poll(2)` until a non-blocking input is readable, has hung up or
    /// failed (the read that follows then says which).
    private func waitUntilReadable() throws {
        var descriptor = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
        while poll(&descriptor, 1, -1) < 0 {
            let failure = Errno.current
            guard failure == .interrupted else { throw FrameReaderError.readFailed(fileDescriptor: input, errno: failure.rawValue) }
        }
    }

    /// Thrown from the read loop to stop reading once the session has ended.
    private struct SessionEnded: Error {}

    /// Waits until the writer has sent everything the (ended) session issued.
    public func finishOutput() {
        writerDone.wait()
        writerDone.signal()
    }

    private func writeLoop() {
        var chunk: [UInt8] = []
        while session.takeOutputToWrite(into: &chunk) {
            let failure = writeAll(chunk)
            session.finishedWriting()
            if let failure {
                // EPIPE/ECONNRESET: the client went away, an ordinary end of a session.
                let gone = failure == .brokenPipe || failure == .connectionReset
                logger.log(gone ? .info : .warning, gone ? "client disconnected; ending session" : "output failed; ending session",
                           [("session", .int(session.id)), ("error", .string("\(failure)"))])
                session.end(cause: .sessionEnded)
                while session.takeOutputToWrite(into: &chunk) { session.finishedWriting() }
                return
            }
        }
    }

    /// Writes all of `bytes` to the output; returns why it failed, or nil once all is written.
    private func writeAll(_ bytes: [UInt8]) -> Errno? {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(Errno) in try FileSystem.writeAll(output.rawValue, raw) }
        }
        guard case .failure(let failure) = result else { return nil }
        return failure
    }
}
