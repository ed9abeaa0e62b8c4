/// Checks JSON text that a plugin hands the host (comm `data`, `metadata`, reply content)
/// before it goes out as is.
///
/// Same grammar as the envelope parser (one scanner, ``JSONScanner``): strict RFC 8259, valid
/// UTF-8, `\u` surrogates only in pairs, at most `maxDepth` arrays and objects open at once.
public enum JSONValidator {
    /// Throws unless `bytes` is exactly one JSON object, optionally surrounded by JSON
    /// whitespace (space, tab, `\n`, `\r`).
    ///
    /// Errors: `InvalidJSON`/`InvalidUTF8`/`DepthLimit` for text that is not valid JSON under the
    /// limit, `InvalidFrame` (`expected a JSON object, got array`) for valid JSON of another
    /// type. Byte offsets in messages are 0-based offsets into `bytes`.
    public static func validateObject(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) throws(WireError) {
        // `{}`, what a plugin sends as empty metadata or data, needs no scanner.
        if bytes.count == 2, maxDepth >= 1, bytes.loadUnaligned(as: UInt16.self) == UInt16(littleEndian: 0x7D7B) { return }
        var scanner = JSONScanner(bytes, maxDepth: maxDepth)
        scanner.skipWhitespace()
        let kind = scanner.currentKind
        try scanner.skipValue(enclosingDepth: 0)
        try scanner.expectEnd("the end of the JSON text")
        if kind != .object {
            throw WireError(.invalidFrame, "expected a JSON object, got \(kind?.name ?? "nothing")")
        }
    }

    /// ``validateObject(_:maxDepth:)`` over the bytes of an array.
    public static func validateObject(_ bytes: [UInt8], maxDepth: Int) throws(WireError) {
        let result: Result<Void, WireError> = bytes.withUnsafeBytes { raw in
            Result { () throws(WireError) in try validateObject(raw, maxDepth: maxDepth) }
        }
        try result.get()
    }
}
