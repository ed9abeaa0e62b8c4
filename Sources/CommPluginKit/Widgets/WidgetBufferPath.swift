/// Where a binary buffer belongs in a widget state: one entry of the
/// protocol's `buffer_paths`, a list of object keys and array indices from
/// the top of the state, e.g. `["value"]` for an `Image`'s picture.
///
/// As JSON it is that list: `["value"]`, `["data", 0]`.
public struct WidgetBufferPath: Hashable, Sendable, Codable, CustomStringConvertible {
    /// One step into the state.
    public enum Component: Hashable, Sendable, Codable {
        /// A member of an object.
        case key(String)
        /// An item of an array.
        case index(Int)

        /// Reads a string (a key) or an integer (an index).
        public init(from decoder: any Decoder) throws {
            let single = try decoder.singleValueContainer()
            if let index = try? single.decode(Int.self) {
                self = .index(index)
            } else {
                self = .key(try single.decode(String.self))
            }
        }

        /// Writes the key as a string, the index as an integer.
        public func encode(to encoder: any Encoder) throws {
            var single = encoder.singleValueContainer()
            switch self {
            case .key(let key): try single.encode(key)
            case .index(let index): try single.encode(index)
            }
        }
    }

    /// The steps, from the top of the state.
    public var components: [Component]

    /// A path of `components`.
    public init(_ components: [Component]) {
        self.components = components
    }

    /// The path to the top-level member `key` (e.g. `WidgetBufferPath(key: "value")`).
    public init(key: String) {
        self.components = [.key(key)]
    }

    /// Reads the JSON list of keys and indices.
    public init(from decoder: any Decoder) throws {
        components = try decoder.singleValueContainer().decode([Component].self)
    }

    /// Writes the JSON list of keys and indices.
    public func encode(to encoder: any Encoder) throws {
        var single = encoder.singleValueContainer()
        try single.encode(components)
    }

    /// The path as JSON text, e.g. `["data",0]`.
    public var description: String {
        "[" + components.map { component in
            switch component {
            case .key(let key): "\"\(key)\""
            case .index(let index): "\(index)"
            }
        }.joined(separator: ",") + "]"
    }
}
