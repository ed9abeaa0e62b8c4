import CommPluginAPI

/// Checks what a plugin hands the host to send (`send`, `close`, `open`)
/// before it becomes a frame, and reads its parts. A refusal is a status,
/// with the reason in the calling thread's error text (`CallContext`) when
/// the status alone does not say it.
struct OutgoingCheck: Sendable {
    /// The longest frame the session may write (`limits.max_frame_bytes`).
    let maxFrameBytes: Int
    /// The deepest nesting of a plugin's JSON (`limits.max_depth`).
    let maxDepth: Int

    /// Checks what a plugin hands the host: a message of at least its ABI
    /// 1.0 size (fields past that are not read), data and metadata JSON
    /// objects (or empty), readable buffers, and the whole (with the comm id,
    /// the parent msg_id and `extra` bytes of names) within the frame limit,
    /// so the bound on queued output always admits it. Data or metadata for
    /// which `isValidatedInbound` is true (bytes the parser already
    /// validated) are not validated again.
    @inline(__always)
    func checkOutgoing(_ message: UnsafePointer<commhost_message>?, commID: String, parent: UnsafeRawBufferPointer?,
                       extra: Int = 0, isValidatedInbound: (UnsafePointer<CChar>, Int) -> Bool) -> commhost_status {
        checkOutgoing(read: message.map(ABIStruct.message), commID: commID, parent: parent, extra: extra,
                      isValidatedInbound: isValidatedInbound)
    }

    /// `checkOutgoing` of a message already read from the plugin's struct
    /// (`ABIStruct.message`), so a send reads it once for the check and
    /// the frame (`withOutgoing(read:)`).
    @inline(__always)
    func checkOutgoing(read message: commhost_message?, commID: String, parent: UnsafeRawBufferPointer?,
                       extra: Int = 0, isValidatedInbound: (UnsafePointer<CChar>, Int) -> Bool) -> commhost_status {
        var size = commID.utf8.count + (parent?.count ?? 0) + extra
        guard let m = message else { return size > maxFrameBytes ? COMMHOST_ELIMIT : COMMHOST_OK }
        guard m.struct_size >= ABIStruct.messageSize1_0 else { return COMMHOST_EINVAL }
        size += m.data.len + m.metadata.len
        // Each slice on its own, not a loop over `[m.data, m.metadata]`: that
        // array was allocated on every send once this check left Session.
        let dataStatus = checkJSON(m.data, isValidatedInbound)
        guard dataStatus == COMMHOST_OK else { return dataStatus }
        let metadataStatus = checkJSON(m.metadata, isValidatedInbound)
        guard metadataStatus == COMMHOST_OK else { return metadataStatus }
        if m.buffer_count > 0 {
            guard let list = m.buffers else { return COMMHOST_EINVAL }
            for i in 0..<m.buffer_count {
                guard list[i].len == 0 || list[i].ptr != nil else { return COMMHOST_EINVAL }
                size += (list[i].len + 2) / 3 * 4
            }
        }
        return size > maxFrameBytes ? COMMHOST_ELIMIT : COMMHOST_OK
    }

    /// Checks one of a message's JSON slices: empty, or readable and a JSON
    /// object (unless `isValidatedInbound` says the parser already checked
    /// these very bytes). The reason for `COMMHOST_EJSON` goes to the
    /// thread's error text.
    @inline(__always)
    private func checkJSON(_ slice: commhost_str, _ isValidatedInbound: (UnsafePointer<CChar>, Int) -> Bool) -> commhost_status {
        guard slice.len > 0 else { return COMMHOST_OK }
        guard let ptr = slice.ptr else { return COMMHOST_EINVAL }
        if isValidatedInbound(ptr, slice.len) { return COMMHOST_OK }
        do {
            try JSONValidator.validateObject(UnsafeRawBufferPointer(start: ptr, count: slice.len), maxDepth: maxDepth)
        } catch {
            CallContext.current.errorText = "\(error)"
            return COMMHOST_EJSON
        }
        return COMMHOST_OK
    }

    /// Calls `body` with a checked message's data, metadata and buffers.
    @inline(__always)
    static func withOutgoing(_ message: UnsafePointer<commhost_message>?,
                             _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, [UnsafeRawBufferPointer]) -> commhost_status)
        -> commhost_status {
        withOutgoing(read: message.map(ABIStruct.message), body)
    }

    /// `withOutgoing` of a message already read from the plugin's struct.
    @inline(__always)
    static func withOutgoing(read message: commhost_message?,
                             _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, [UnsafeRawBufferPointer]) -> commhost_status)
        -> commhost_status {
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        guard let m = message else { return body(none, none, []) }
        let data = m.data.len > 0 ? UnsafeRawBufferPointer(start: m.data.ptr, count: m.data.len) : none
        let metadata = m.metadata.len > 0 ? UnsafeRawBufferPointer(start: m.metadata.ptr, count: m.metadata.len) : none
        var buffers: [UnsafeRawBufferPointer] = []
        if m.buffer_count > 0, let list = m.buffers {
            buffers = (0..<m.buffer_count).map { UnsafeRawBufferPointer(start: list[$0].ptr, count: list[$0].len) }
        }
        return body(data, metadata, buffers)
    }
}
