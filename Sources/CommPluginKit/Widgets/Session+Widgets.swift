extension Session {
    /// The comm target of widget models: `jupyter.widget`.
    public static let widgetTarget = "jupyter.widget"

    /// The protocol version a widget comm_open names in `metadata.version`:
    /// "2.1.0". The shipped html-manager requires major version 2 (its own
    /// `PROTOCOL_VERSION` is "2.0.0").
    public static let widgetProtocolVersion = "2.1.0"

    /// Opens the widget model `widget` toward the client: a comm_open on
    /// target `jupyter.widget` whose data is `{"state": ..., "buffer_paths":
    /// [...]}` (binary leaves of the state moved into buffers at their
    /// paths) and whose metadata is `{"version": "2.1.0"}` plus `metadata`'s
    /// members. `instance` makes the handler instance (a `Handler` exported
    /// by the library) from the new comm. Returns the reference other
    /// models put in their state, so a model is opened after those it
    /// refers to.
    ///
    /// Call it where ``open(_:target:id:_:instance:)`` may be called (on the
    /// session's serialized context); throws as it does, and
    /// ``PluginError`` when the state cannot be encoded.
    @discardableResult
    public func openWidget<Handler: CommHandler>(_ type: Handler.Type = Handler.self, _ widget: Widget,
                                                 id: String? = nil, metadata: [String: WidgetValue] = [:],
                                                 instance make: (Comm) throws -> Handler) throws -> WidgetReference {
        let comm = try open(type, target: Self.widgetTarget, id: id, try Self.widgetOpenMessage(widget, metadata: metadata),
                            instance: make)
        return WidgetReference(comm)
    }

    /// Opens `widget` as ``openWidget(_:_:id:metadata:instance:)`` does,
    /// making the instance with `Handler`'s ``CommHandler/init(comm:open:)``,
    /// which receives the comm_open message (read its state back with
    /// ``WidgetState/init(opening:)``).
    @discardableResult
    public func openWidget<Handler: CommHandler>(_ type: Handler.Type, _ widget: Widget, id: String? = nil,
                                                 metadata: [String: WidgetValue] = [:]) throws -> WidgetReference {
        let message = try Self.widgetOpenMessage(widget, metadata: metadata)
        let comm = try open(type, target: Self.widgetTarget, id: id, message) { comm in
            try Handler(comm: comm, open: message)
        }
        return WidgetReference(comm)
    }

    /// The comm_open message for `widget`: `{"state", "buffer_paths"}`,
    /// metadata `{"version": "2.1.0"}` plus `metadata`, the buffers.
    static func widgetOpenMessage(_ widget: Widget, metadata: [String: WidgetValue]) throws -> CommMessage {
        struct OpenData: Encodable {
            var state: [String: WidgetValue]
            var buffer_paths: [WidgetBufferPath]
        }
        let wire = widget.state.separated()
        var message = try CommMessage(json: OpenData(state: wire.json, buffer_paths: wire.bufferPaths),
                                      buffers: wire.buffers)
        let meta = metadata.merging(["version": .string(widgetProtocolVersion)]) { $1 }
        message.metadata = try JSONCoding.encode(meta, what: "widget comm_open metadata")
        return message
    }
}

extension WidgetState {
    /// The state a widget comm_open carries (`{"state", "buffer_paths"}`
    /// data, buffers put back at their paths). Throws ``PluginError``
    /// (``PluginStatus/invalidArgument``) when the data is not of that form.
    public init(opening message: CommMessage) throws {
        struct OpenData: Decodable {
            var state: [String: WidgetValue]
            var buffer_paths: [WidgetBufferPath]?
        }
        let data = try message.decode(OpenData.self)
        try self.init(json: data.state, bufferPaths: data.buffer_paths ?? [], buffers: message.buffers)
    }
}
