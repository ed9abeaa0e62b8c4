/// A JSON string token the scanner found: `[start, end)` covers it including both quotes.
struct StringToken: Sendable, Equatable {
    /// Offset of the opening quote.
    var start: Int
    /// Offset one past the closing quote.
    var end: Int
    /// Whether the text between the quotes holds any `\` escape (then it must be decoded before
    /// it is compared or turned into a `String`).
    var hasEscapes: Bool

    /// Offset of the first byte after the opening quote.
    var contentStart: Int { start + 1 }
    /// Offset of the closing quote.
    var contentEnd: Int { end - 1 }
    /// The whole token, quotes included.
    var range: ByteRange { ByteRange(start: start, end: end) }
}
