/// What ``JSONScanner`` found wrong in a JSON text, and where: the one finding behind both the
/// wire's ``WireError`` (which carries it in `fault`) and the manifest reader's
/// ``JSONDocument/SyntaxError``, each of which words it for its own reader.
struct JSONFault: Sendable {
    /// 0-based offset of the byte the finding is about (the text's length at its end).
    var offset: Int
    /// What is wrong there.
    var reason: Reason

    /// What is wrong.
    enum Reason: Sendable {
        /// Something else was expected at `offset` (the end of the text counts as something else).
        case expected(Expected)
        /// The text ended inside the string that starts at this offset.
        case unterminatedString(start: Int)
        /// A `\u` escape of a high surrogate (this code unit) is not followed by a `\u` escape.
        case unpairedHighSurrogate(UInt16)
        /// A `\u` escape of a high surrogate (the first code unit) is followed by a `\u` escape
        /// that is not a low surrogate (the second).
        case highSurrogateFollowedBy(UInt16, UInt16)
        /// A `\u` escape of a low surrogate (this code unit) with no high surrogate before it.
        case loneLowSurrogate(UInt16)
        /// A number starts with `0` followed by more digits (`offset` is the `0`).
        case leadingZero
        /// A control character (U+0000 to U+001F) stands unescaped in a string.
        case controlCharacter(UInt8)
        /// Arrays and objects are nested deeper than the scanner's limit.
        case tooDeep(maxDepth: Int)
        /// A string holds bytes that are not well-formed UTF-8 (`offset` is the sequence's lead
        /// byte); says how, e.g. "overlong encoding".
        case invalidUTF8(String)
    }

    /// What the grammar allows where something else was found.
    enum Expected: Sendable {
        /// A value (object, array, string, number, `true`, `false` or `null`).
        case value
        /// A string, as an object's member name.
        case memberName
        /// The `:` after a member name.
        case colon
        /// `,` or `}` after an object's member.
        case commaOrBrace
        /// `,` or `]` after an array's element.
        case commaOrBracket
        /// A character after `\` in a string.
        case escapeCharacter
        /// One of `" \ / b f n r t u` after `\`.
        case escapeLetter
        /// A hex digit in a `\u` escape.
        case hexDigit
        /// A digit (at the start of a number, after its `-`).
        case digit
        /// A digit after a number's decimal point.
        case digitAfterDecimalPoint
        /// A digit in a number's exponent.
        case digitInExponent
        /// The rest of the literal `true`, `false` or `null`.
        case literal(StaticString)
        /// Nothing but whitespace after the value; the words for it (e.g. "the end of the frame").
        case end(String)

        /// The wire's words for it, as in "expected a digit in the exponent".
        var text: String {
            switch self {
            case .value: "a value"
            case .memberName: "a string (a member name)"
            case .colon: "':'"
            case .commaOrBrace: "',' or '}'"
            case .commaOrBracket: "',' or ']'"
            case .escapeCharacter: "an escape character after '\\'"
            case .escapeLetter: "one of \" \\ / b f n r t u after '\\'"
            case .hexDigit: "a hex digit in a \\u escape"
            case .digit: "a digit"
            case .digitAfterDecimalPoint: "a digit after the decimal point"
            case .digitInExponent: "a digit in the exponent"
            case .literal(let word): "'\(word)'"
            case .end(let what): what
            }
        }
    }
}
