import CommPluginAPI
import Glibc
import Synchronization

/// A comm_msg to a worker-served comm that went out without a wait
/// (`PipelinedCall`): what its frame gave it (the parent header, the input
/// line), for the host calls made under it and a failure reported late.
final class SessionPipelinedCall: PipelinedCall, @unchecked Sendable {
    // @unchecked: everything is immutable after init but `dispatched`, an atomic.

    let session: Session
    let comm: Comm
    let line: Int
    /// When the session made the call (for the target's handler time).
    let started = MonotonicClock.nanoseconds()
    /// Copies of the frame's msg_id token, data and metadata, one after the
    /// other in one allocation (the frame's bytes do not outlive its handling).
    private let copies: UnsafeMutableRawBufferPointer
    private let parentCount: Int?, dataCount: Int, metadataCount: Int
    private let sent = Atomic<Bool>(false)

    init(session: Session, comm: Comm, parent: UnsafeRawBufferPointer?, data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer,
         line: Int) {
        self.session = session
        self.comm = comm
        self.line = line
        parentCount = parent?.count
        dataCount = data.count
        metadataCount = metadata.count
        let copies = UnsafeMutableRawBufferPointer.allocate(byteCount: max((parent?.count ?? 0) + data.count + metadata.count, 1), alignment: 1)
        // Part by part, not a loop over an array of the three: that array
        // was allocated and freed once per message.
        var offset = 0
        func append(_ part: UnsafeRawBufferPointer) {
            guard let base = part.baseAddress, part.count > 0 else { return }
            (copies.baseAddress! + offset).copyMemory(from: base, byteCount: part.count)
            offset += part.count
        }
        if let parent { append(parent) }
        append(data)
        append(metadata)
        self.copies = copies
    }

    deinit {
        copies.deallocate()
    }

    /// The frame's msg_id token.
    var parent: UnsafeRawBufferPointer? {
        parentCount.map { UnsafeRawBufferPointer(start: copies.baseAddress, count: $0) }
    }

    /// Whether `bytes` are the frame's data or metadata (validated when the
    /// frame arrived), byte for byte: a worker's echo needs no second pass.
    func isInbound(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let base = copies.baseAddress! + (parentCount ?? 0)
        func equal(_ start: UnsafeMutableRawPointer, _ count: Int) -> Bool {
            count == bytes.count && memcmp(start, bytes.baseAddress!, count) == 0
        }
        return !bytes.isEmpty && (equal(base, dataCount) || equal(base + dataCount, metadataCount))
    }

    /// Whether the proxy sent it (else it ran, or failed, as a plain call).
    var wasDispatched: Bool { sent.load(ordering: .acquiring) }

    override func dispatched() {
        sent.store(true, ordering: .releasing)
        session.pipelinedCallDispatched()
    }

    override func finished(status: commhost_status, errorText: String?) {
        session.pipelinedCallFinished(self, status: status, errorText: errorText)
    }

    override func beginDelivery(continuing open: DeliveryBatch?) -> DeliveryBatch? {
        if open === session { return open }
        open?.endDelivery()
        return session.beginDelivery()
    }
}
