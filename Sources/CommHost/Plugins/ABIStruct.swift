import CommPluginAPI

/// Reading a plugin's versioned struct (ABI requirement 15): the struct
/// starts with `size_t struct_size`, the size the plugin was built with,
/// which may be smaller than the host's (an older plugin) or larger (a
/// newer minor). The host copies only the bytes both know of and treats
/// the rest as absent (zero: no value, NULL callbacks), so it never reads
/// past the end of an older plugin's struct.
///
/// Sizes always come from the caller's concrete `MemoryLayout`, never from
/// a generic `T`'s runtime metadata: Swift shares the metadata of an
/// imported C struct between every image in the process, so a Swift plugin
/// built against another version of the header may have registered its own
/// layout under the same name. For the same reason the host never copies a
/// whole ABI struct through a generic function.
enum ABIStruct {
    /// The `struct_size` a plugin's struct declares.
    static func declaredSize(_ pointer: UnsafeRawPointer) -> Int {
        pointer.loadUnaligned(as: Int.self)
    }

    /// Copies the first `min(struct_size, hostSize)` bytes of the plugin's
    /// struct at `source` over `destination` (zeroed by the caller), where
    /// `hostSize` is the host's size of the struct.
    static func copyPrefix(of source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer, hostSize: Int) {
        let size = min(declaredSize(source), hostSize)
        if size > 0 { destination.copyMemory(from: source, byteCount: size) }
    }

    /// The plugin's descriptor as the host's `commhost_plugin`.
    static func plugin(_ pointer: UnsafePointer<commhost_plugin>) -> commhost_plugin {
        var copy = commhost_plugin()
        withUnsafeMutablePointer(to: &copy) { copyPrefix(of: pointer, into: $0, hostSize: MemoryLayout<commhost_plugin>.size) }
        return copy
    }

    /// The plugin's handler table as the host's `commhost_handler`.
    static func handler(_ pointer: UnsafePointer<commhost_handler>) -> commhost_handler {
        var copy = commhost_handler()
        withUnsafeMutablePointer(to: &copy) { copyPrefix(of: pointer, into: $0, hostSize: MemoryLayout<commhost_handler>.size) }
        return copy
    }

    /// A message the plugin hands the host, as the host's `commhost_message`.
    static func message(_ pointer: UnsafePointer<commhost_message>) -> commhost_message {
        var copy = commhost_message()
        withUnsafeMutablePointer(to: &copy) { copyPrefix(of: pointer, into: $0, hostSize: MemoryLayout<commhost_message>.size) }
        return copy
    }

    /// The ABI 1.0 size of `commhost_message`: the least the host reads of
    /// a message a plugin hands it.
    static let messageSize1_0 = MemoryLayout<commhost_message>.offset(of: \.buffer_count)! + MemoryLayout<Int>.size

    /// A heap copy of `value` that lives for the rest of the process (the
    /// host's own tables), `size` and `alignment` being the caller's
    /// concrete `MemoryLayout` of the struct.
    static func permanentCopy<T>(of value: inout T, size: Int, alignment: Int) -> UnsafePointer<T> {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: alignment)
        withUnsafePointer(to: &value) { storage.copyMemory(from: $0, byteCount: size) }
        return UnsafePointer(storage.assumingMemoryBound(to: T.self))
    }
}
