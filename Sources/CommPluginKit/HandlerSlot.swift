/// One handler type registered with ``PluginExport``, at a fixed index that
/// its open and restore callbacks carry.
struct HandlerSlot: Sendable {
    /// ``CommHandler/handlerName``.
    let name: String
    /// The type open instantiates.
    let type: any CommHandler.Type
    /// The same type when it adopts ``HandsOffState``, else nil (and the
    /// handler's snapshot and restore callbacks are NULL).
    let handsOffType: (any HandsOffState.Type)?

    init(_ type: any CommHandler.Type) {
        self.name = type.handlerName
        self.type = type
        self.handsOffType = type as? any HandsOffState.Type
    }

    /// Builds an instance from saved state bytes.
    static func restore<Handler: HandsOffState>(_ type: Handler.Type, comm: Comm,
                                                state bytes: [UInt8]) throws -> Handler {
        let state = try JSONCoding.decode(Handler.State.self, from: bytes,
                                          what: "the saved state of handler \"\(Handler.handlerName)\"",
                                          status: .unreadableState, emptyIsObject: false)
        return try Handler(comm: comm, restoring: state)
    }

    /// The JSON bytes of an instance's state.
    static func snapshot<Handler: HandsOffState>(_ handler: Handler) throws -> [UInt8] {
        try JSONCoding.encode(handler.state, what: "the state of handler \"\(Handler.handlerName)\"")
    }
}
