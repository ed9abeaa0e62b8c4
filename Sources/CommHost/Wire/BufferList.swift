/// A message's binary buffers, stored back to back in one array: what an inbound frame's base64
/// strings decode to, in order. The decoder writes each buffer straight into this storage and a
/// plugin is handed views into it as it lies (``MessageView``), so the bytes are written once
/// between the wire text and the plugin.
public struct BufferList: Sendable, Equatable, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// Every buffer's bytes, one after another.
    private(set) var storage: [UInt8] = []
    /// Where each buffer ends in `storage`.
    private(set) var ends: [Int] = []

    /// No buffers.
    public init() {}

    /// The given buffers, copied into one storage.
    public init(_ buffers: [[UInt8]]) {
        storage.reserveCapacity(buffers.reduce(0) { $0 + $1.count })
        ends.reserveCapacity(buffers.count)
        for buffer in buffers {
            storage += buffer
            ends.append(storage.count)
        }
    }

    /// The given buffers, copied into one storage.
    public init(arrayLiteral buffers: [UInt8]...) {
        self.init(buffers)
    }

    /// The number of buffers.
    public var count: Int { ends.count }

    /// Whether there are no buffers.
    public var isEmpty: Bool { ends.isEmpty }

    /// A copy of buffer `index`'s bytes.
    public subscript(index: Int) -> [UInt8] {
        Array(storage[(index == 0 ? 0 : ends[index - 1])..<ends[index]])
    }

    /// A copy of every buffer, in order.
    public var arrays: [[UInt8]] { (0..<count).map { self[$0] } }

    /// The buffers as arrays, for test failure messages.
    public var description: String { arrays.description }

    /// Appends the bytes a strict base64 text stands for as one more buffer, decoded straight into
    /// the storage; when the text is refused, nothing is appended.
    public mutating func appendDecoding(base64 text: UnsafeRawBufferPointer) throws(Base64.DecodingError) {
        try Base64.decode(text, appendingTo: &storage)
        ends.append(storage.count)
    }

    /// Appends the bytes of a strict base64 text held in an array (a JSON string that had escapes),
    /// as the pointer form does.
    public mutating func appendDecoding(base64 text: [UInt8]) throws(Base64.DecodingError) {
        let result: Result<Void, Base64.DecodingError> = text.withUnsafeBytes { raw in
            Result { () throws(Base64.DecodingError) in try appendDecoding(base64: raw) }
        }
        try result.get()
    }

    /// Calls `body` with the storage's bytes (all buffers, back to back) and where each buffer
    /// ends in them. The bytes are valid only during the call.
    func withStorage<R>(_ body: (UnsafeRawBufferPointer, [Int]) -> R) -> R {
        storage.withUnsafeBytes { body($0, ends) }
    }
}
