/// A key for a position in the coding path that has no key of the caller's:
/// an array index (`[3]` in messages) or `super`.
struct JSONCodingKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
    }

    init(intValue: Int) {
        self.stringValue = "Index \(intValue)"
        self.intValue = intValue
    }

    /// The key `super`, where `superDecoder()` and `superEncoder()` read and write.
    static let superKey = JSONCodingKey(stringValue: "super")
}
