/// The rule for comm target names in the manifest: 1 to 128 characters,
/// each an ASCII letter, digit, or one of `_ . : / @ -`, the first being a
/// letter, digit, `_` or `@`. So `jupyter.widget`, `commhost.echo` and
/// `@scope/pkg:widget` are valid; names with spaces, non-ASCII letters or a
/// leading `.`, `/`, `:` or `-` are not.
public enum TargetName {
    /// The longest valid name, in characters.
    public static let maxLength = 128

    /// Nil when `name` is valid, otherwise why it is not.
    public static func problem(with name: String) -> String? {
        let bytes = Array(name.utf8)
        guard let first = bytes.first else { return "target name is empty" }
        guard bytes.count <= maxLength else {
            return "target name is \(bytes.count) characters long; at most \(maxLength) are allowed"
        }
        if let bad = name.unicodeScalars.first(where: { !isAllowed($0) }) {
            let shown = (0x20..<0x7F).contains(bad.value) ? "'\(bad)'" : "U+" + String(bad.value, radix: 16, uppercase: true)
            return "target name \(JSONText.string(name)) contains \(shown); allowed are ASCII letters, digits and _ . : / @ -"
        }
        guard isLetterOrDigit(first) || first == UInt8(ascii: "_") || first == UInt8(ascii: "@") else {
            return "target name \(JSONText.string(name)) must start with a letter, digit, '_' or '@'"
        }
        return nil
    }

    /// Whether `name` follows the rule.
    public static func isValid(_ name: String) -> Bool {
        problem(with: name) == nil
    }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar.isASCII else { return false }
        let byte = UInt8(scalar.value)
        return isLetterOrDigit(byte) || "_.:/@-".utf8.contains(byte)
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
