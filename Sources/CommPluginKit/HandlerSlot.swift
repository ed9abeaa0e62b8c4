import CommPluginAPI

/// One handler type registered with ``PluginExport``: its descriptor's
/// `handler_data` points at it, so one C function per callback kind serves
/// every handler.
final class HandlerSlot: Sendable {
    /// ``CommHandler/handlerName``.
    let name: String
    /// The type open instantiates.
    let type: any CommHandler.Type
    /// The same type when it adopts ``SurvivesReload``, else nil (and the
    /// handler's snapshot and restore callbacks are NULL).
    let survivesReloadType: (any SurvivesReload.Type)?

    init(_ type: any CommHandler.Type) {
        self.name = type.handlerName
        self.type = type
        self.survivesReloadType = type as? any SurvivesReload.Type
    }

    /// The slot a callback's `handler` argument stands for.
    static func borrow(_ handler: UnsafePointer<commhost_handler>?) -> HandlerSlot? {
        guard let data = handler?.pointee.handler_data else { return nil }
        return Unmanaged<HandlerSlot>.fromOpaque(data).takeUnretainedValue()
    }

    /// Builds an instance from saved state bytes written by `version`.
    static func restore<Handler: SurvivesReload>(_ type: Handler.Type, comm: Comm, fromVersion version: String,
                                                state bytes: [UInt8]) throws -> Handler {
        try Handler(comm: comm, restoring: Handler.decodeState(bytes, fromVersion: version))
    }

    /// The JSON bytes of an instance's state.
    static func snapshot<Handler: SurvivesReload>(_ handler: Handler) throws -> [UInt8] {
        try JSONCoding.encode(handler.state, what: "the state of handler \"\(Handler.handlerName)\"")
    }
}
