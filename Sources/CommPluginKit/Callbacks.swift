import CommPluginAPI

// The C callbacks the descriptor points at. Each catches everything: a
// thrown error becomes a status plus set_error text, and a NULL the header
// does not allow becomes COMMHOST_EINVAL.

typealias InitCallback = @convention(c) (UnsafePointer<commhost_host_api>?, commhost_str,
                                         UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status
typealias DeinitCallback = @convention(c) (UnsafeMutableRawPointer?) -> Void
typealias OpenCallback = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<commhost_message>?,
                                         UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status
typealias MessageCallback = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?,
                                            UnsafePointer<commhost_message>?) -> commhost_status
typealias CloseCallback = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<commhost_message>?,
                                          commhost_close_cause) -> Void
typealias SnapshotCallback = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?,
                                             UnsafePointer<commhost_writer>?) -> commhost_status
typealias RestoreCallback = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, commhost_bytes,
                                            UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status

/// The library's init: checks the host table, then makes the ``PluginHost``
/// that is the library pointer.
func initLibrary(_ api: UnsafePointer<commhost_host_api>?, _ config: commhost_str,
                 _ outLibrary: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status {
    guard let api, let outLibrary else { return COMMHOST_EINVAL }
    let size = api.pointee.struct_size
    func reach<Field>(_ field: KeyPath<commhost_host_api, Field>) -> Int {
        MemoryLayout<commhost_host_api>.offset(of: field).map { $0 + MemoryLayout<Field>.size } ?? Int.max
    }
    func refuse(_ status: Int32, _ text: String) -> commhost_status {
        if size >= reach(\.set_error), let setError = api.pointee.set_error {
            text.withCommhostStr { setError($0) }
        }
        return status
    }
    guard size >= reach(\.abi_minor), Int32(api.pointee.abi_major) == COMMHOST_ABI_MAJOR else {
        return refuse(COMMHOST_EUNSUPPORTED, "this plugin was built for commhost ABI \(COMMHOST_ABI_MAJOR).x; rebuild it against the host's comm_plugin.h")
    }
    guard size >= reach(\.release_comm) else {
        return refuse(COMMHOST_EUNSUPPORTED, "the host function table is \(size) bytes, smaller than ABI 1.0's; the host is broken")
    }
    guard let slots = PluginExport.registeredSlots() else {
        return refuse(COMMHOST_EFAIL, "init was called before the entry function returned a descriptor")
    }
    var configuration = config.ptr.map { Array(UnsafeRawBufferPointer(start: $0, count: config.len)) } ?? []
    if configuration.isEmpty { configuration = Array("null".utf8) }
    let host = PluginHost(api: api, configuration: configuration, slots: slots)
    outLibrary.pointee = Unmanaged.passRetained(host).toOpaque()
    return COMMHOST_OK
}

/// The library's deinit: drops handed-off instances and the ``PluginHost``.
func deinitLibrary(_ library: UnsafeMutableRawPointer?) {
    guard let library else { return }
    Unmanaged<PluginHost>.fromOpaque(library).takeRetainedValue().retire()
}

/// A handler's open: a new instance of the slot's type.
func openInstance(slot: Int, _ library: UnsafeMutableRawPointer?, _ comm: OpaquePointer?,
                  _ message: UnsafePointer<commhost_message>?,
                  _ outInstance: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status {
    guard let library else { return COMMHOST_EINVAL }
    let host = Unmanaged<PluginHost>.fromOpaque(library).takeUnretainedValue()
    guard let comm, let outInstance else {
        host.setError("open was called with a NULL comm or out_instance")
        return COMMHOST_EINVAL
    }
    guard slot < host.slots.count else {
        host.setError("open was called for handler index \(slot), but the library has \(host.slots.count) handlers")
        return COMMHOST_EINVAL
    }
    do {
        let handler = try host.slots[slot].type.init(comm: Comm(retaining: comm, host: host),
                                                     open: CommMessage(borrowing: message))
        outInstance.pointee = InstanceBox(handler: handler, host: host).retainedPointer()
        return COMMHOST_OK
    } catch {
        return host.fail(error)
    }
}

/// A handler's message: hands it to the instance.
func receiveMessage(_ instance: UnsafeMutableRawPointer?, _ comm: OpaquePointer?,
                    _ message: UnsafePointer<commhost_message>?) -> commhost_status {
    guard let instance else { return COMMHOST_EINVAL }
    let box = InstanceBox.borrow(instance)
    do {
        try box.handler.receive(CommMessage(borrowing: message))
        return COMMHOST_OK
    } catch {
        return box.host.fail(error)
    }
}

/// A handler's close: tells the instance, then drops the host's reference to it.
func closeInstance(_ instance: UnsafeMutableRawPointer?, _ comm: OpaquePointer?,
                   _ message: UnsafePointer<commhost_message>?, _ cause: commhost_close_cause) {
    guard let instance else { return }
    let box = InstanceBox.take(instance)
    if box.snapshotted {
        box.host.forgetHandedOff(box)
    }
    box.handler.close(cause: CloseCause(cause), message: CommMessage(borrowing: message))
}

/// A handler's snapshot: the instance's state as JSON into the host's writer.
func snapshotInstance(_ instance: UnsafeMutableRawPointer?, _ comm: OpaquePointer?,
                      _ writer: UnsafePointer<commhost_writer>?) -> commhost_status {
    guard let instance else { return COMMHOST_EINVAL }
    let box = InstanceBox.borrow(instance)
    guard let writer, let write = writer.pointee.write else {
        box.host.setError("snapshot was called with a NULL writer")
        return COMMHOST_EINVAL
    }
    guard let handler = box.handler as? any HandsOffState else {
        box.host.setError("handler \"\(type(of: box.handler).handlerName)\" does not hand off state")
        return COMMHOST_EUNSUPPORTED
    }
    do {
        let bytes = try HandlerSlot.snapshot(handler)
        let status = bytes.withUnsafeBufferPointer { write(writer.pointee.context, $0.baseAddress, $0.count) }
        guard status == COMMHOST_OK else {
            box.host.setError("the host's writer refused \(bytes.count) bytes of state (\(PluginStatus(rawValue: status)))")
            return status
        }
        if !box.snapshotted {
            box.snapshotted = true
            box.host.rememberHandedOff(box)
        }
        return COMMHOST_OK
    } catch {
        return box.host.fail(error)
    }
}

/// A handler's restore: a new instance of the slot's type from saved state.
func restoreInstance(slot: Int, _ library: UnsafeMutableRawPointer?, _ comm: OpaquePointer?,
                     _ state: commhost_bytes,
                     _ outInstance: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status {
    guard let library else { return COMMHOST_EINVAL }
    let host = Unmanaged<PluginHost>.fromOpaque(library).takeUnretainedValue()
    guard let comm, let outInstance else {
        host.setError("restore was called with a NULL comm or out_instance")
        return COMMHOST_EINVAL
    }
    guard slot < host.slots.count else {
        host.setError("restore was called for handler index \(slot), but the library has \(host.slots.count) handlers")
        return COMMHOST_EINVAL
    }
    guard let type = host.slots[slot].handsOffType else {
        host.setError("handler \"\(host.slots[slot].name)\" does not hand off state")
        return COMMHOST_EUNSUPPORTED
    }
    let bytes = state.ptr.map { Array(UnsafeBufferPointer(start: $0, count: state.len)) } ?? []
    do {
        let handler = try HandlerSlot.restore(type, comm: Comm(retaining: comm, host: host), state: bytes)
        outInstance.pointee = InstanceBox(handler: handler, host: host).retainedPointer()
        return COMMHOST_OK
    } catch {
        return host.fail(error)
    }
}

/// How many handler types one library may export: open and restore carry
/// the handler's index, so each index needs its own C function.
let handlerSlotCount = 16

/// The open callback for handler index `slot`.
func openCallback(slot: Int) -> OpenCallback? {
    switch slot {
        case 0: { openInstance(slot: 0, $0, $1, $2, $3) }
        case 1: { openInstance(slot: 1, $0, $1, $2, $3) }
        case 2: { openInstance(slot: 2, $0, $1, $2, $3) }
        case 3: { openInstance(slot: 3, $0, $1, $2, $3) }
        case 4: { openInstance(slot: 4, $0, $1, $2, $3) }
        case 5: { openInstance(slot: 5, $0, $1, $2, $3) }
        case 6: { openInstance(slot: 6, $0, $1, $2, $3) }
        case 7: { openInstance(slot: 7, $0, $1, $2, $3) }
        case 8: { openInstance(slot: 8, $0, $1, $2, $3) }
        case 9: { openInstance(slot: 9, $0, $1, $2, $3) }
        case 10: { openInstance(slot: 10, $0, $1, $2, $3) }
        case 11: { openInstance(slot: 11, $0, $1, $2, $3) }
        case 12: { openInstance(slot: 12, $0, $1, $2, $3) }
        case 13: { openInstance(slot: 13, $0, $1, $2, $3) }
        case 14: { openInstance(slot: 14, $0, $1, $2, $3) }
        case 15: { openInstance(slot: 15, $0, $1, $2, $3) }
    default: nil
    }
}

/// The restore callback for handler index `slot`.
func restoreCallback(slot: Int) -> RestoreCallback? {
    switch slot {
        case 0: { restoreInstance(slot: 0, $0, $1, $2, $3) }
        case 1: { restoreInstance(slot: 1, $0, $1, $2, $3) }
        case 2: { restoreInstance(slot: 2, $0, $1, $2, $3) }
        case 3: { restoreInstance(slot: 3, $0, $1, $2, $3) }
        case 4: { restoreInstance(slot: 4, $0, $1, $2, $3) }
        case 5: { restoreInstance(slot: 5, $0, $1, $2, $3) }
        case 6: { restoreInstance(slot: 6, $0, $1, $2, $3) }
        case 7: { restoreInstance(slot: 7, $0, $1, $2, $3) }
        case 8: { restoreInstance(slot: 8, $0, $1, $2, $3) }
        case 9: { restoreInstance(slot: 9, $0, $1, $2, $3) }
        case 10: { restoreInstance(slot: 10, $0, $1, $2, $3) }
        case 11: { restoreInstance(slot: 11, $0, $1, $2, $3) }
        case 12: { restoreInstance(slot: 12, $0, $1, $2, $3) }
        case 13: { restoreInstance(slot: 13, $0, $1, $2, $3) }
        case 14: { restoreInstance(slot: 14, $0, $1, $2, $3) }
        case 15: { restoreInstance(slot: 15, $0, $1, $2, $3) }
    default: nil
    }
}
