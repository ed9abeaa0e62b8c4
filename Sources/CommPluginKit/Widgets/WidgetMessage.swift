/// A comm_msg of the Jupyter widget message protocol 2.x, as ipywidgets 7
/// and the html-manager shipped with py-shinywidgets send them: the
/// `method` of its data says which.
///
/// - `{"method":"update","state":{...},"buffer_paths":[...]}` with buffers:
///   ``update(_:)``, the state with the buffers put back at their paths.
/// - `{"method":"request_state"}`: ``requestState``; answer with a full
///   ``update(_:)`` (``Comm/sendUpdate(_:)``).
/// - `{"method":"custom","content":{...}}` with buffers: ``custom(_:buffers:)``
///   (a `Button`'s click is the content `{"event":"click"}`).
public enum WidgetMessage: Hashable, Sendable {
    /// Some members of the model's state changed to these values.
    case update(WidgetState)
    /// The other side asks for the whole state.
    case requestState
    /// A message for the model's own logic, and its buffers.
    case custom(WidgetValue, buffers: [[UInt8]])

    /// The methods this type reads and writes.
    public static let methods = ["update", "request_state", "custom"]

    /// Reads a comm_msg. Throws ``PluginError`` (``PluginStatus/invalidArgument``)
    /// saying what is wrong when the data is not a JSON object, has no
    /// `method` string or an unknown one, an update's `state` is not an
    /// object or its `buffer_paths` do not fit its buffers, or a custom
    /// message has no `content`.
    public init(_ message: CommMessage) throws {
        let data: WidgetValue = try JSONCoding.decode(WidgetValue.self, from: message.data, what: "widget message data",
                                                      status: .invalidArgument)
        guard let members = data.objectValue else {
            throw PluginError(.invalidArgument, "widget message data must be a JSON object; got \(data.described)")
        }
        let known = Self.methods.map { "\"\($0)\"" }.joined(separator: ", ")
        guard let method = members["method"]?.stringValue else {
            throw PluginError(.invalidArgument, "widget message data has no \"method\" string; the methods are \(known)")
        }
        switch method {
        case "update":
            guard let state = members["state"]?.objectValue else {
                throw PluginError(.invalidArgument, "an update needs a \"state\" object; got "
                    + (members["state"]?.described ?? "none"))
            }
            let paths: [WidgetBufferPath]
            switch members["buffer_paths"] {
            case nil, .null?:
                paths = []
            case .array(let items)?:
                paths = try items.enumerated().map { index, item in try Self.path(item, index: index) }
            case let other?:
                throw PluginError(.invalidArgument, "an update's \"buffer_paths\" must be an array; got \(other.described)")
            }
            self = .update(try WidgetState(json: state, bufferPaths: paths, buffers: message.buffers))
        case "request_state":
            self = .requestState
        case "custom":
            guard let content = members["content"] else {
                throw PluginError(.invalidArgument, "a custom message needs a \"content\" member")
            }
            self = .custom(content, buffers: message.buffers)
        default:
            throw PluginError(.invalidArgument, "unknown widget message method \"\(method)\"; the methods are \(known)")
        }
    }

    /// The comm_msg to send: data with sorted keys, buffers beside it.
    /// Throws ``PluginError`` when the content cannot be encoded (a binary
    /// leaf inside custom content: send it as one of `buffers`).
    public func commMessage() throws -> CommMessage {
        switch self {
        case .update(let state):
            let wire = state.separated()
            return try CommMessage(json: Update(state: wire.json, bufferPaths: wire.bufferPaths), buffers: wire.buffers)
        case .requestState:
            return try CommMessage(json: ["method": "request_state"])
        case .custom(let content, let buffers):
            return try CommMessage(json: Custom(content: content), buffers: buffers)
        }
    }

    private static func path(_ item: WidgetValue, index: Int) throws -> WidgetBufferPath {
        guard let steps = item.arrayValue else {
            throw PluginError(.invalidArgument, "buffer_paths[\(index)] must be an array of keys and indices; got \(item.described)")
        }
        return WidgetBufferPath(try steps.map { step in
            switch step {
            case .string(let key): return .key(key)
            case .int(let position): return .index(position)
            default:
                throw PluginError(.invalidArgument, "buffer_paths[\(index)] holds \(step.described); "
                    + "a path step is a key (string) or an index (integer)")
            }
        })
    }

    /// The data of an update.
    private struct Update: Encodable {
        let method = "update"
        var state: [String: WidgetValue]
        var bufferPaths: [WidgetBufferPath]

        enum CodingKeys: String, CodingKey {
            case method, state, bufferPaths = "buffer_paths"
        }
    }

    /// The data of a custom message.
    private struct Custom: Encodable {
        let method = "custom"
        var content: WidgetValue
    }
}
