/// Reading a plugin's versioned struct (ABI requirement 15): the struct
/// starts with `size_t struct_size`, the size the plugin was built with,
/// which may be smaller than the host's (an older plugin) or larger (a
/// newer minor). The host copies only the bytes both know of and treats
/// the rest as absent (zero: no value, NULL callbacks), so it never reads
/// past the end of an older plugin's struct.
enum ABIStruct {
    /// The `struct_size` a plugin's struct declares.
    static func declaredSize(_ pointer: UnsafeRawPointer) -> Int {
        pointer.loadUnaligned(as: Int.self)
    }

    /// The plugin's struct at `pointer` as the host's type `T`: its first
    /// `min(struct_size, MemoryLayout<T>.size)` bytes, the rest zero.
    @inline(__always)
    static func read<T>(_ pointer: UnsafePointer<T>, as type: T.Type = T.self) -> T {
        let raw = UnsafeRawPointer(pointer)
        let size = min(declaredSize(raw), MemoryLayout<T>.size)
        if size == MemoryLayout<T>.size { return pointer.pointee }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        defer { copy.deallocate() }
        copy.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        copy.copyMemory(from: raw, byteCount: max(size, 0))
        return copy.load(as: T.self)
    }
}
