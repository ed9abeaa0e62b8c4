/// A widget model another model's state refers to, as the protocol writes
/// it: the string `"IPY_MODEL_<comm id>"` (a VBox's `children`, a slider's
/// `layout` and `style`).
///
/// ``Session/openWidget(_:_:id:metadata:instance:)`` returns one for the
/// model it opened, so a model that refers to others is naturally opened
/// after them, as the front end needs (it resolves references when the
/// comm_open arrives).
public struct WidgetReference: Hashable, Sendable, CustomStringConvertible {
    /// The referenced model's comm id.
    public let id: String

    /// The model whose comm has id `id`.
    public init(id: String) {
        self.id = id
    }

    /// The model served by `comm`.
    public init(_ comm: Comm) {
        self.init(id: comm.id)
    }

    /// The prefix the protocol puts before a comm id.
    public static let prefix = "IPY_MODEL_"

    /// The reference read from state text `"IPY_MODEL_<id>"`, or nil.
    public init?(_ value: WidgetValue) {
        guard let text = value.stringValue, text.hasPrefix(Self.prefix), text.count > Self.prefix.count else {
            return nil
        }
        self.init(id: String(text.dropFirst(Self.prefix.count)))
    }

    /// The value to put in a state: `"IPY_MODEL_<id>"`.
    public var value: WidgetValue {
        .string(description)
    }

    /// `IPY_MODEL_<id>`.
    public var description: String {
        Self.prefix + id
    }
}
