/// A frame (or a piece of JSON a plugin handed the host) that the wire layer refused.
///
/// `ename` is one of the fixed names in ``WireError/Name``; `evalue` says what was wrong and
/// where (a byte offset or a JSON path). The session adds the input line number when it turns
/// this into an outbound `error` frame; the wire layer never knows it.
public struct WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The error's name, one of ``WireError/Name``'s raw values.
    public var ename: String
    /// A sentence a person can act on: what was wrong and where.
    public var evalue: String
    /// For an error ``JSONScanner`` found: the finding `evalue` words, for a reader that words
    /// it otherwise (``JSONDocument``). Not compared: it says what `evalue` says.
    var fault: JSONFault?

    /// The fixed set of error names the wire layer produces.
    public enum Name: String, Sendable, CaseIterable {
        /// The bytes are not JSON (RFC 8259, strict). `evalue` gives the 0-based byte offset and
        /// what was expected there: `invalid JSON at byte 17: expected ',' or '}'`. A `\u` escape
        /// naming an unpaired UTF-16 surrogate is reported under this name too.
        case invalidJSON = "InvalidJSON"
        /// A string holds bytes that are not well-formed UTF-8 (overlong forms, encoded
        /// surrogates, code points above U+10FFFF, stray or missing continuation bytes).
        case invalidUTF8 = "InvalidUTF8"
        /// The JSON is valid but is not a frame: not an object, a required field missing, a field
        /// of the wrong type, or `msg_type` and `header.msg_type` disagreeing. `evalue` names the
        /// JSON path: `content.comm_id: expected a string, got number`.
        case invalidFrame = "InvalidFrame"
        /// A member name appears twice in the frame object, its `header` or its `content`
        /// (`evalue` names the path), so no two readers can disagree on what the frame says.
        case duplicateKey = "DuplicateKey"
        /// `msg_type` names no message this host accepts.
        case unknownMessageType = "UnknownMessageType"
        /// An entry of `buffers` is not strict base64: `buffers[1]: invalid character '!' at offset 5`.
        case invalidBase64 = "InvalidBase64"
        /// Arrays and objects are nested deeper than ``WireLimits/maxDepth``.
        case depthLimit = "DepthLimit"
        /// The frame is longer than ``WireLimits/maxFrameBytes``.
        case frameTooLong = "FrameTooLong"
    }

    /// An error with any name; prefer ``init(_:_:)`` for the wire layer's own names.
    public init(ename: String, evalue: String) {
        self.ename = ename
        self.evalue = evalue
    }

    /// An error with one of the wire layer's fixed names.
    public init(_ name: Name, _ evalue: String) {
        self.ename = name.rawValue
        self.evalue = evalue
    }

    /// An error the JSON scanner found, with its finding.
    init(_ name: Name, _ evalue: String, fault: JSONFault) {
        self.ename = name.rawValue
        self.evalue = evalue
        self.fault = fault
    }

    /// Errors are equal when their names and messages are.
    public static func == (a: WireError, b: WireError) -> Bool { a.ename == b.ename && a.evalue == b.evalue }

    /// The fixed name this error carries, or nil if it was built with another `ename`.
    public var name: Name? { Name(rawValue: ename) }

    /// `ename: evalue`.
    public var description: String { "\(ename): \(evalue)" }
}
