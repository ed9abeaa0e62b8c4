import Dispatch
import Glibc

/// Serves one session over a pair of byte streams (stdin/stdout, or one
/// connected socket): a reader on the calling thread feeds frames to the
/// session; a writer thread sends its output in the order it was issued.
public final class StreamTransport: @unchecked Sendable {
    // @unchecked: the descriptors are immutable; `writerDone` is a semaphore.
    private let session: Session
    private let input: Int32
    private let output: Int32
    private let limits: ManifestLimits
    private let logger: Logger
    private let writerDone = DispatchSemaphore(value: 0)
    private let outputIsSocket: Bool

    /// A transport reading frames from `input` and writing to `output`.
    public init(session: Session, input: Int32, output: Int32, limits: ManifestLimits, logger: Logger) {
        self.session = session
        self.input = input
        self.output = output
        self.limits = limits
        self.logger = logger
        var info = stat()
        outputIsSocket = fstat(output, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
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
        session.setDirectWriter(limit: directLimit) { [self] in writeWithoutBlocking($0) }
        do {
            var more = true
            while more {
                // Wait outside the batch, so frames plugin threads send meanwhile go out at once.
                try waitUntilReadable()
                try session.handleBatch(directLimit: directLimit, write: writeWithoutBlocking) {
                    more = try reader.readAvailable { event in
                        switch event {
                        case .line(let bytes, let line):
                            session.receive(bytes, line: line)
                        case .tooLong(let line, let byteCount):
                            session.receiveTooLong(line: line, byteCount: byteCount)
                        }
                        if session.isEnded { throw SessionEnded() }
                    } != .endOfStream
                }
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

    /// The most a reader writes itself: a socket takes any amount without
    /// blocking (`MSG_DONTWAIT`); a pipe or file only what fits the space
    /// `poll` promises (`PIPE_BUF`).
    private var directLimit: Int { outputIsSocket ? 1 << 18 : Int(PIPE_BUF) }

    /// Writes what fits now without blocking; returns the bytes written, or
    /// -1 on error (the writer thread then meets the error and ends the session).
    private func writeWithoutBlocking(_ bytes: UnsafeRawBufferPointer) -> Int {
        if outputIsSocket {
            while true {
                let n = send(output, bytes.baseAddress!, bytes.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                if n >= 0 { return n }
                let failure = Errno.current
                if failure == .interrupted { continue }
                return failure == .wouldBlock ? 0 : -1
            }
        }
        var descriptor = pollfd(fd: output, events: Int16(POLLOUT), revents: 0)
        guard poll(&descriptor, 1, 0) == 1, descriptor.revents & Int16(POLLOUT) != 0 else { return 0 }
        while true {
            let n = Glibc.write(output, bytes.baseAddress!, bytes.count)
            if n >= 0 { return n }
            if Errno.current != .interrupted { return -1 }
        }
    }

    /// `poll(2)` until the input is readable, has hung up or failed (the
    /// read that follows then says which).
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
            Result { () throws(Errno) in try FileSystem.writeAll(output, raw) }
        }
        guard case .failure(let failure) = result else { return nil }
        return failure
    }
}
