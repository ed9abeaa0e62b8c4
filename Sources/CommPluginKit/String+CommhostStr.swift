import CommPluginAPI

extension String {
    /// Lends the string's UTF-8 bytes as a `commhost_str` for the length of `body`.
    func withCommhostStr<R>(_ body: (commhost_str) -> R) -> R {
        var text = self
        return text.withUTF8 { bytes in
            body(commhost_str(ptr: UnsafeRawPointer(bytes.baseAddress)?.assumingMemoryBound(to: CChar.self),
                              len: bytes.count))
        }
    }

    /// Copies a borrowed `commhost_str` (NULL or empty gives "").
    init(commhost str: commhost_str) {
        guard let start = str.ptr, str.len > 0 else {
            self = ""
            return
        }
        self = String(decoding: UnsafeRawBufferPointer(start: start, count: str.len), as: UTF8.self)
    }
}
