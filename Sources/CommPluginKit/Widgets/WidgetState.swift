/// A widget model's state: the top-level JSON object of the Jupyter widget
/// protocol (`_model_name`, `value`, `layout`, ...), whose leaves may be
/// binary (``WidgetValue/bytes(_:)``).
///
/// On the wire a state is split in two: JSON without the binary leaves, and
/// the buffers, each with its `buffer_paths` entry. ``separated()`` makes
/// that split (as ipywidgets' `_remove_buffers`: a binary member of an object
/// is left out, a binary item of an array becomes `null`), and
/// ``init(json:bufferPaths:buffers:)`` puts buffers back at their paths.
///
/// As `Codable` (for ``SurvivesReload``), a state is
/// `{"state": {...}, "buffer_paths": [...], "buffers": ["<base64>", ...]}`,
/// so binary leaves survive a reload.
public struct WidgetState: Hashable, Sendable {
    /// The members of the state object.
    public var values: [String: WidgetValue]

    /// A state with `values`.
    public init(_ values: [String: WidgetValue] = [:]) {
        self.values = values
    }

    /// The member `key`; setting nil removes it.
    public subscript(key: String) -> WidgetValue? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// The state's `_model_name`, or "the model" when it has none (for messages).
    public var modelName: String {
        values["_model_name"]?.stringValue ?? "the model"
    }

    /// This state with every member of `other` set over it.
    public func merging(_ other: WidgetState) -> WidgetState {
        WidgetState(values.merging(other.values) { $1 })
    }

    /// The state split for the wire: JSON without binary leaves, and one
    /// buffer per binary leaf with its path, in a stable order (members by
    /// key, items by index).
    public func separated() -> Separated {
        var paths: [WidgetBufferPath] = []
        var buffers: [[UInt8]] = []
        var json: [String: WidgetValue] = [:]
        for key in values.keys.sorted() {
            if let kept = Self.separate(values[key]!, at: [.key(key)], &paths, &buffers) {
                json[key] = kept
            }
        }
        return Separated(json: json, bufferPaths: paths, buffers: buffers)
    }

    /// The wire form of a state: its JSON, and the buffers that go beside it.
    public struct Separated: Hashable, Sendable {
        /// The state without binary leaves.
        public var json: [String: WidgetValue]
        /// Where each buffer belongs, one per buffer, in order.
        public var bufferPaths: [WidgetBufferPath]
        /// The binary leaves, in the order of ``bufferPaths``.
        public var buffers: [[UInt8]]
    }

    /// Puts `buffers` back into `json`, the n-th at `bufferPaths[n]` (as
    /// ipywidgets' `put_buffers`). Every step of a path but the last must
    /// exist (an object member or an array index in range); the last sets an
    /// object member or replaces an array item. Throws ``PluginError``
    /// (``PluginStatus/invalidArgument``) saying which path does not fit,
    /// or when the counts differ.
    public init(json: [String: WidgetValue], bufferPaths: [WidgetBufferPath], buffers: [[UInt8]]) throws {
        guard bufferPaths.count == buffers.count else {
            throw PluginError(.invalidArgument, "the message has \(bufferPaths.count) buffer_paths but "
                + "\(buffers.count) buffers; each buffer needs exactly one path")
        }
        var state = WidgetValue.object(json)
        for (index, (path, buffer)) in zip(bufferPaths, buffers).enumerated() {
            guard !path.components.isEmpty else {
                throw PluginError(.invalidArgument, "buffer_paths[\(index)] is empty; a buffer goes at a member of the state")
            }
            do {
                try Self.put(.bytes(buffer), at: path.components[...], into: &state)
            } catch let problem as PathProblem {
                throw PluginError(.invalidArgument, "buffer_paths[\(index)] \(path) does not fit the state: \(problem.text)")
            }
        }
        self.init(state.objectValue ?? [:])
    }

    /// This state with `update`'s members set over it, after checking each
    /// one: the field must exist in this state, and its new value must be of
    /// the kind the field holds (``WidgetValue/accepts(_:)``: an integer
    /// stays an integer). Nothing is applied unless every member passes.
    /// Throws ``PluginError`` (``PluginStatus/invalidArgument``) naming the
    /// model, the field and what was wrong.
    public func applying(_ update: WidgetState) throws -> WidgetState {
        for key in update.values.keys.sorted() {
            let new = update.values[key]!
            guard let current = values[key] else {
                let known = values.keys.filter { !$0.hasPrefix("_") }.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
                throw PluginError(.invalidArgument, "an update for \(modelName) names the unknown field \"\(key)\"; "
                    + "its fields are \(known)")
            }
            guard current.accepts(new) else {
                throw PluginError(.invalidArgument, "an update for \(modelName) sets field \"\(key)\", which holds "
                    + "\(current.kind), to \(new.described)")
            }
        }
        return merging(update)
    }

    // MARK: Splitting and joining

    private static func separate(_ value: WidgetValue, at path: [WidgetBufferPath.Component],
                                 _ paths: inout [WidgetBufferPath], _ buffers: inout [[UInt8]]) -> WidgetValue? {
        switch value {
        case .bytes(let bytes):
            paths.append(WidgetBufferPath(path))
            buffers.append(bytes)
            return nil
        case .object(let members):
            var kept: [String: WidgetValue] = [:]
            for key in members.keys.sorted() {
                if let value = separate(members[key]!, at: path + [.key(key)], &paths, &buffers) {
                    kept[key] = value
                }
            }
            return .object(kept)
        case .array(let items):
            return .array(items.enumerated().map { index, item in
                separate(item, at: path + [.index(index)], &paths, &buffers) ?? .null
            })
        default:
            return value
        }
    }

    /// Why a buffer path does not lead into the state.
    private struct PathProblem: Error {
        var text: String
    }

    private static func put(_ leaf: WidgetValue, at path: ArraySlice<WidgetBufferPath.Component>,
                            into value: inout WidgetValue) throws {
        guard let step = path.first else {
            value = leaf
            return
        }
        let rest = path.dropFirst()
        switch (step, value) {
        case (.key(let key), .object(var members)):
            guard rest.isEmpty || members[key] != nil else {
                throw PathProblem(text: "there is no member \"\(key)\" to go into")
            }
            var member = members[key] ?? .null
            value = .null // so that `members` is the only reference while it changes
            try put(leaf, at: rest, into: &member)
            members[key] = member
            value = .object(members)
        case (.index(let index), .array(var items)):
            guard items.indices.contains(index) else {
                throw PathProblem(text: "index \(index) is outside an array of \(items.count)")
            }
            value = .null
            try put(leaf, at: rest, into: &items[index])
            value = .array(items)
        case (.key(let key), _):
            throw PathProblem(text: "member \"\(key)\" is asked of \(value.kind), not an object")
        case (.index(let index), _):
            throw PathProblem(text: "index \(index) is asked of \(value.kind), not an array")
        }
    }
}

extension WidgetState: ExpressibleByDictionaryLiteral {
    /// A state with these members; a repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, WidgetValue)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
}

extension WidgetState: Codable {
    private enum Keys: String, CodingKey {
        case state, bufferPaths = "buffer_paths", buffers
    }

    /// Reads `{"state", "buffer_paths", "buffers": [base64]}`.
    public init(from decoder: any Decoder) throws {
        let object = try decoder.container(keyedBy: Keys.self)
        let json = try object.decode([String: WidgetValue].self, forKey: .state)
        let paths = try object.decodeIfPresent([WidgetBufferPath].self, forKey: .bufferPaths) ?? []
        let texts = try object.decodeIfPresent([String].self, forKey: .buffers) ?? []
        let buffers = try texts.enumerated().map { index, text in
            switch Base64.decode(text) {
            case .success(let bytes):
                return bytes
            case .failure(let problem):
                throw DecodingError.dataCorrupted(DecodingError.Context(
                    codingPath: object.codingPath + [Keys.buffers, JSONCodingKey(intValue: index)],
                    debugDescription: "not base64: \(problem.text)"))
            }
        }
        try self.init(json: json, bufferPaths: paths, buffers: buffers)
    }

    /// Writes `{"state", "buffer_paths", "buffers": [base64]}`.
    public func encode(to encoder: any Encoder) throws {
        let wire = separated()
        var object = encoder.container(keyedBy: Keys.self)
        try object.encode(wire.json, forKey: .state)
        try object.encode(wire.bufferPaths, forKey: .bufferPaths)
        try object.encode(wire.buffers.map(Base64.encode), forKey: .buffers)
    }
}
