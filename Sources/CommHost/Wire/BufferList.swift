/// A message's binary buffers, stored back to back in one array: what an inbound frame's base64
/// strings decode to, in order. The decoder writes each buffer straight into this storage and a
/// plugin is handed views into it as it lies (``MessageView``), so the bytes are written once
/// between the wire text and the plugin. A large storage goes to ``SpareBytes`` when the last
/// copy of the list is gone, for the next large frame to decode into.
public struct BufferList: Sendable, Equatable, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// nil while there are no buffers, so a frame without any allocates nothing here.
    private var box: Box?

    /// The storage and where each buffer ends in it; a class so that its end can hand the storage
    /// on for reuse.
    private final class Box: @unchecked Sendable {
        // @unchecked: a box is changed only through a list that holds the sole reference to it
        // (`uniqueBox`), so no other thread can be reading it meanwhile.
        /// Every buffer's bytes, one after another.
        var storage: [UInt8]
        /// Where each buffer ends in `storage`.
        var ends: [Int]

        init(storage: [UInt8], ends: [Int]) {
            self.storage = storage
            self.ends = ends
        }

        deinit { SpareBytes.park(&storage) }
    }

    /// No buffers.
    public init() {}

    /// The given buffers, copied into one storage.
    public init(_ buffers: [[UInt8]]) {
        guard !buffers.isEmpty else { return }
        var storage: [UInt8] = []
        var ends: [Int] = []
        storage.reserveCapacity(buffers.reduce(0) { $0 + $1.count })
        ends.reserveCapacity(buffers.count)
        for buffer in buffers {
            storage += buffer
            ends.append(storage.count)
        }
        box = Box(storage: storage, ends: ends)
    }

    /// The given buffers, copied into one storage.
    public init(arrayLiteral buffers: [UInt8]...) {
        self.init(buffers)
    }

    /// The number of buffers.
    public var count: Int { box?.ends.count ?? 0 }

    /// Whether there are no buffers.
    public var isEmpty: Bool { count == 0 }

    /// A copy of buffer `index`'s bytes.
    public subscript(index: Int) -> [UInt8] {
        let ends = box!.ends
        return Array(box!.storage[(index == 0 ? 0 : ends[index - 1])..<ends[index]])
    }

    /// A copy of every buffer, in order.
    public var arrays: [[UInt8]] { (0..<count).map { self[$0] } }

    /// The buffers as arrays, for test failure messages.
    public var description: String { arrays.description }

    public static func == (a: BufferList, b: BufferList) -> Bool {
        (a.box?.ends ?? []) == (b.box?.ends ?? []) && (a.box?.storage ?? []) == (b.box?.storage ?? [])
    }

    /// Appends the bytes a strict base64 text stands for as one more buffer, decoded straight into
    /// the storage; when the text is refused, nothing is appended.
    public mutating func appendDecoding(base64 text: UnsafeRawBufferPointer) throws(Base64.DecodingError) {
        let box = uniqueBox()
        // Exactly what the decoder will append (it reserves no more, and an
        // allocator may give no more, as AddressSanitizer's does).
        var needed = text.count / 4 * 3
        if text.count >= 4, text[text.count - 1] == UInt8(ascii: "=") { needed -= text[text.count - 2] == UInt8(ascii: "=") ? 2 : 1 }
        if box.storage.capacity == 0, needed >= SpareBytes.minimumCapacity,
           let spare = SpareBytes.take(capacity: needed) {
            box.storage = spare
        }
        try Base64.decode(text, appendingTo: &box.storage)
        box.ends.append(box.storage.count)
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
        guard let box else { return body(UnsafeRawBufferPointer(start: nil, count: 0), []) }
        return box.storage.withUnsafeBytes { body($0, box.ends) }
    }

    /// The box, made this list's own first if another list shares it.
    private mutating func uniqueBox() -> Box {
        if !isKnownUniquelyReferenced(&box) {
            box = Box(storage: box?.storage ?? [], ends: box?.ends ?? [])
        }
        return box!
    }
}
