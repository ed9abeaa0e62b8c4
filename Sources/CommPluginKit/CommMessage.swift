import CommPluginAPI

/// One comm message, in either direction: the `data` and `metadata` JSON
/// objects (as UTF-8 bytes) and the binary buffers.
///
/// Messages from the host are copied out of the ABI's borrowed slices, so a
/// `CommMessage` may be kept after the callback that delivered it returns.
public struct CommMessage: Hashable, Sendable {
    /// The `data` field: the bytes of a JSON object, exactly as they arrived
    /// on the wire. Empty means `{}`.
    public var data: [UInt8]
    /// The `metadata` field: the bytes of a JSON object. Empty means `{}`.
    public var metadata: [UInt8]
    /// The binary buffers, raw bytes.
    public var buffers: [[UInt8]]

    /// A message from JSON text bytes already encoded (each a JSON object,
    /// or empty for `{}`) and buffers.
    public init(data: [UInt8] = [], metadata: [UInt8] = [], buffers: [[UInt8]] = []) {
        self.data = data
        self.metadata = metadata
        self.buffers = buffers
    }

    /// A message whose `data` is `value` encoded as JSON (sorted keys). The
    /// value must encode as a JSON object for the host to accept it.
    /// Throws ``PluginError`` when encoding fails.
    public init(json value: some Encodable, buffers: [[UInt8]] = []) throws {
        self.init(data: try JSONCoding.encode(value, what: "message data"), buffers: buffers)
    }

    /// Decodes `data` as a `T`. Throws ``PluginError``
    /// (``PluginStatus/invalidArgument``) saying where and why it does not fit.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONCoding.decode(T.self, from: data, what: "message data", status: .invalidArgument)
    }

    /// Decodes `metadata` as a `T`. Throws ``PluginError``
    /// (``PluginStatus/invalidArgument``) saying where and why it does not fit.
    public func decodeMetadata<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONCoding.decode(T.self, from: metadata, what: "message metadata", status: .invalidArgument)
    }

    /// The `data` bytes as text (`{}` when empty).
    public var dataText: String {
        data.isEmpty ? "{}" : String(decoding: data, as: UTF8.self)
    }
}

extension CommMessage {
    /// Copies a message the host lends for the length of a callback. NULL
    /// reads as an empty message; fields past the writer's `struct_size` read
    /// as empty.
    init(borrowing message: UnsafePointer<commhost_message>?) {
        guard let message else {
            self.init()
            return
        }
        let size = message.pointee.struct_size
        func has<Field>(_ field: KeyPath<commhost_message, Field>) -> Bool {
            guard let offset = MemoryLayout<commhost_message>.offset(of: field) else { return false }
            return size >= offset + MemoryLayout<Field>.size
        }
        let data = has(\.data) ? Self.copy(message.pointee.data) : []
        let metadata = has(\.metadata) ? Self.copy(message.pointee.metadata) : []
        var buffers: [[UInt8]] = []
        if has(\.buffer_count), let list = message.pointee.buffers, message.pointee.buffer_count > 0 {
            buffers = UnsafeBufferPointer(start: list, count: message.pointee.buffer_count).map { slice in
                guard let start = slice.ptr, slice.len > 0 else { return [] }
                return Array(UnsafeBufferPointer(start: start, count: slice.len))
            }
        }
        self.init(data: data, metadata: metadata, buffers: buffers)
    }

    /// Lends this message to the host as a `commhost_message` for the length of `body`.
    func withBorrowed<R>(_ body: (UnsafePointer<commhost_message>) -> R) -> R {
        data.withUnsafeBufferPointer { data in
            metadata.withUnsafeBufferPointer { metadata in
                Self.withBorrowedBuffers(buffers) { buffers in
                    var message = commhost_message(
                        struct_size: MemoryLayout<commhost_message>.stride,
                        data: Self.str(data),
                        metadata: Self.str(metadata),
                        buffers: buffers.baseAddress,
                        buffer_count: buffers.count)
                    return withUnsafePointer(to: &message) { body($0) }
                }
            }
        }
    }

    private static func copy(_ str: commhost_str) -> [UInt8] {
        guard let start = str.ptr, str.len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: start, count: str.len))
    }

    private static func str(_ bytes: UnsafeBufferPointer<UInt8>) -> commhost_str {
        commhost_str(ptr: UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self),
                     len: bytes.count)
    }

    /// Lends every buffer at once as a `commhost_bytes` array; each buffer's
    /// storage is pinned by one nested `withUnsafeBufferPointer`.
    private static func withBorrowedBuffers<R>(_ buffers: [[UInt8]],
                                               _ body: (UnsafeBufferPointer<commhost_bytes>) -> R) -> R {
        var slices: [commhost_bytes] = []
        slices.reserveCapacity(buffers.count)
        func pin(_ index: Int) -> R {
            if index == buffers.count {
                return slices.withUnsafeBufferPointer(body)
            }
            return buffers[index].withUnsafeBufferPointer { buffer in
                slices.append(commhost_bytes(ptr: buffer.baseAddress, len: buffer.count))
                return pin(index + 1)
            }
        }
        return pin(0)
    }
}
