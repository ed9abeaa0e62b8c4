import CommPluginAPI

/// A comm message whose bytes the host owns: what a plugin or client gave,
/// copied so it outlives the call that passed it (close callbacks that run
/// later, for instance).
struct OwnedMessage: Sendable {
    /// JSON object text; empty means `{}`.
    var data: [UInt8] = []
    /// JSON object text; empty means `{}`.
    var metadata: [UInt8] = []
    /// Raw buffers.
    var buffers: [[UInt8]] = []

    /// An empty message (`{}` data and metadata, no buffers).
    static let empty = OwnedMessage()

    /// Copies a borrowed ABI message (NULL gives the empty message).
    init(copying message: UnsafePointer<commhost_message>?) {
        guard let m = message.map(ABIStruct.message) else { return }
        data = Self.bytes(m.data)
        metadata = Self.bytes(m.metadata)
        if let list = m.buffers, m.buffer_count > 0 {
            buffers = (0..<m.buffer_count).map { i in
                guard let ptr = list[i].ptr else { return [] }
                return Array(UnsafeBufferPointer(start: ptr, count: list[i].len))
            }
        }
    }

    init(data: [UInt8] = [], metadata: [UInt8] = [], buffers: [[UInt8]] = []) {
        self.data = data
        self.metadata = metadata
        self.buffers = buffers
    }

    /// Calls `body` with a borrowed ABI view of this message (its buffers packed into one
    /// storage for the call).
    func withMessage<R>(_ body: (UnsafePointer<commhost_message>) -> R) -> R {
        data.withUnsafeBytes { data in
            metadata.withUnsafeBytes { metadata in
                MessageView.with(data: data, metadata: metadata, buffers: buffers.isEmpty ? [] : BufferList(buffers), body)
            }
        }
    }

    private static func bytes(_ slice: commhost_str) -> [UInt8] {
        guard let ptr = slice.ptr, slice.len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: ptr, count: slice.len))
    }
}

/// Builds the borrowed `commhost_message` a plugin callback receives.
enum MessageView {
    /// `{}`, for absent data or metadata.
    static let emptyObject: StaticString = "{}"

    /// Calls `body` with a message whose data and metadata point at the given
    /// bytes (empty means `{}`) and whose buffers point into `buffers`' storage
    /// where they lie: nothing is copied.
    ///
    /// Inlined for the usual message without buffers: as a call, what the
    /// caller's closure captures was retained and released around it.
    @inline(__always)
    static func with<R>(data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, buffers: BufferList,
                        _ body: (UnsafePointer<commhost_message>) -> R) -> R {
        guard buffers.isEmpty else { return withBuffers(data: data, metadata: metadata, buffers: buffers, body) }
        var message = commhost_message()
        message.struct_size = MemoryLayout<commhost_message>.size
        message.data = slice(data)
        message.metadata = slice(metadata)
        return withUnsafePointer(to: &message, body)
    }

    private static func withBuffers<R>(data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, buffers: BufferList,
                                       _ body: (UnsafePointer<commhost_message>) -> R) -> R {
        var message = commhost_message()
        message.struct_size = MemoryLayout<commhost_message>.size
        message.data = slice(data)
        message.metadata = slice(metadata)
        return buffers.withStorage { storage, ends in
            // Every pointer given is non-NULL, an empty buffer's too (the ABI allows NULL there,
            // but a plugin need not expect it).
            let base = storage.baseAddress ?? UnsafeRawPointer(emptyObject.utf8Start)
            let slices = UnsafeMutablePointer<commhost_bytes>.allocate(capacity: ends.count)
            defer { slices.deallocate() }
            var start = 0
            for (i, end) in ends.enumerated() {
                slices[i] = commhost_bytes(ptr: (base + start).assumingMemoryBound(to: UInt8.self), len: end - start)
                start = end
            }
            message.buffers = UnsafePointer(slices)
            message.buffer_count = ends.count
            return withUnsafePointer(to: &message, body)
        }
    }

    /// Calls `body` with a message whose data, metadata and buffers point
    /// at the given bytes, which stay where they are for the call.
    static func with<R>(data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, bufferSlices: UnsafeBufferPointer<commhost_bytes>,
                        _ body: (UnsafePointer<commhost_message>) -> R) -> R {
        var message = commhost_message()
        message.struct_size = MemoryLayout<commhost_message>.size
        message.data = slice(data)
        message.metadata = slice(metadata)
        message.buffers = bufferSlices.isEmpty ? nil : bufferSlices.baseAddress
        message.buffer_count = bufferSlices.count
        return withUnsafePointer(to: &message, body)
    }

    private static func slice(_ bytes: UnsafeRawBufferPointer) -> commhost_str {
        if bytes.count == 0 {
            return commhost_str(ptr: UnsafeRawPointer(emptyObject.utf8Start).assumingMemoryBound(to: CChar.self), len: 2)
        }
        return commhost_str(ptr: bytes.baseAddress!.assumingMemoryBound(to: CChar.self), len: bytes.count)
    }
}
