/// A growable run of bytes at a stable address, written in place: worker
/// frames are encoded straight into it (`WorkerCodec.append`) and written to
/// the socket from it, with no intermediate array. Not thread-safe; its
/// owner says which thread or lock guards it.
final class FrameBuffer {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int = 4 << 10) {
        self.capacity = max(capacity, 64)
        base = .allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    var isEmpty: Bool { count == 0 }
    /// What was written, valid until the next write or `removeAll`.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    func removeAll() { count = 0 }

    /// Room for `byteCount` more bytes: where to write them. `commit` then
    /// counts what was written.
    @inline(__always)
    func reserve(_ byteCount: Int) -> UnsafeMutableRawPointer {
        if capacity - count < byteCount { grow(toHold: count + byteCount) }
        return base + count
    }

    @inline(__always)
    func commit(_ byteCount: Int) { count += byteCount }

    /// Appends `bytes`.
    func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    /// Drops the first `byteCount` bytes, moving the rest to the front.
    func removeFirst(_ byteCount: Int) {
        precondition(byteCount >= 0 && byteCount <= count, "FrameBuffer: removing more than it holds")
        if byteCount < count { base.copyMemory(from: base + byteCount, byteCount: count - byteCount) }
        count -= byteCount
    }

    private func grow(toHold needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}
