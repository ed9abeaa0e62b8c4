import CommPluginAPI

/// The `commhost_writer` a snapshot callback writes to: each `write`
/// appends. The host uses it for in-process hand-off (`Handler.snapshot`),
/// and a worker for the snapshot it sends back in its reply.
enum SnapshotWriter {
    /// Calls `body` with a writer valid for the call; returns its status and
    /// everything written.
    static func collect(_ body: (UnsafePointer<commhost_writer>) -> commhost_status) -> (commhost_status, [UInt8]) {
        let sink = Sink()
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        // Field by field from zero, as every host struct (ABIStruct).
        var writer = commhost_writer()
        writer.struct_size = MemoryLayout<commhost_writer>.size
        writer.host_data = context.toOpaque()
        writer.write = { writer, ptr, len in
            guard let context = writer?.pointee.host_data else { return COMMHOST_EINVAL }
            guard len == 0 || ptr != nil else { return COMMHOST_EINVAL }
            let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
            if len > 0 { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: ptr, count: len)) }
            return COMMHOST_OK
        }
        let status = withUnsafePointer(to: &writer) { body($0) }
        return (status, sink.bytes)
    }

    private final class Sink {
        var bytes: [UInt8] = []
    }
}
