extension Comm {
    /// Sends `{"method":"update","state":...,"buffer_paths":[...]}`: the
    /// members of `state`, with its binary leaves moved into buffers at
    /// their paths. Send only the members that changed, or the whole state
    /// to answer ``WidgetMessage/requestState``. Throws as ``send(_:)``.
    public func sendUpdate(_ state: WidgetState) throws {
        try send(WidgetMessage.update(state).commMessage())
    }

    /// Sends `{"method":"custom","content":...}` with `buffers`. Throws as
    /// ``send(_:)``, or ``PluginError`` when `content` holds binary data
    /// (send that as one of `buffers`).
    public func sendCustom(_ content: WidgetValue, buffers: [[UInt8]] = []) throws {
        try send(WidgetMessage.custom(content, buffers: buffers).commMessage())
    }
}
