import Foundation
import Glibc

/// Serves one session over a pair of byte streams (stdin/stdout, or one
/// connected socket): a reader on the calling thread feeds frames to the
/// session; a writer thread sends its output in the order it was issued.
public final class StreamTransport: @unchecked Sendable {
    // @unchecked: the descriptors are immutable; `writerDone` is a semaphore.
    private let session: Session
    private let input: Int32
    private let output: Int32
    private let limits: SessionLimits
    private let logger: Logger
    private let writerDone = DispatchSemaphore(value: 0)

    /// A transport reading frames from `input` and writing to `output`.
    public init(session: Session, input: Int32, output: Int32, limits: SessionLimits, logger: Logger) {
        self.session = session
        self.input = input
        self.output = output
        self.limits = limits
        self.logger = logger
    }

    /// Starts the writer, then reads frames until end of input, a read
    /// error, or the session ending (its client fell too far behind).
    public func run() {
        let writer = Thread { [self] in
            writeLoop()
            writerDone.signal()
        }
        writer.name = "commhost-writer-\(session.id)"
        writer.start()
        let reader = FrameReader(fileDescriptor: input, maxFrameBytes: limits.maxFrameBytes)
        do {
            try reader.run { event throws(SessionEnded) in
                switch event {
                case .line(let bytes, let line):
                    session.receive(bytes, line: line)
                case .tooLong(let line, let byteCount):
                    session.receiveTooLong(line: line, byteCount: byteCount)
                }
                if session.isEnded { throw SessionEnded() }
            }
        } catch is SessionEnded {
            return
        } catch FrameReaderError.readFailed(_, let code) where code == ECONNRESET {
            // A socket client that went away without a clean shutdown: an ordinary end.
            logger.info("client disconnected", [("session", .int(session.id)), ("error", .string(String(cString: strerror(code))))])
        } catch {
            logger.error("reading input failed", [("session", .int(session.id)), ("error", .string("\(error)"))])
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
        while session.takeOutput(into: &chunk, wait: true) {
            guard writeAll(chunk) else {
                let code = errno
                // EPIPE/ECONNRESET: the client went away, an ordinary end of a session.
                let gone = code == EPIPE || code == ECONNRESET
                logger.log(gone ? .info : .warning, gone ? "client disconnected; ending session" : "output failed; ending session",
                           [("session", .int(session.id)), ("error", .string(String(cString: strerror(code))))])
                session.end(cause: .sessionEnded)
                while session.takeOutput(into: &chunk, wait: true) {}
                return
            }
        }
    }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(output, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }
}
