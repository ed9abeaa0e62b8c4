import CommPluginAPI

// The C callbacks the descriptor points at: one function per callback kind,
// serving every handler (the handler's slot is its `handler_data`). Each
// catches everything: a thrown error becomes a status plus set_error text,
// and a NULL the header does not allow becomes COMMHOST_EINVAL. Each runs
// the plugin's code marked as on the session's serialized context.

/// The library's init: checks the host table, makes the ``CommLibrary`` and
/// the ``LibraryRuntime`` that is the library pointer.
func initLibrary(_ table: UnsafePointer<commhost_host>?, _ config: commhost_str,
                 _ outLibrary: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status {
    guard let table, let outLibrary else { return COMMHOST_EINVAL }
    let size = table.pointee.struct_size
    func reach<Field>(_ field: KeyPath<commhost_host, Field>) -> Int {
        MemoryLayout<commhost_host>.offset(of: field).map { $0 + MemoryLayout<Field>.size } ?? Int.max
    }
    func refuse(_ status: Int32, _ text: String) -> commhost_status {
        if size >= reach(\.set_error) {
            HostTable(table: table).setError(text)
        }
        return status
    }
    guard size >= reach(\.abi_minor), Int32(table.pointee.abi_major) == COMMHOST_ABI_MAJOR else {
        return refuse(COMMHOST_EUNSUPPORTED, "this plugin was built for commhost ABI \(COMMHOST_ABI_MAJOR).x; "
            + "rebuild it against the host's comm_plugin.h")
    }
    guard size >= HostTable.size1_0 else {
        return refuse(COMMHOST_EUNSUPPORTED, "the host function table is \(size) bytes, smaller than ABI 1.0's "
            + "\(HostTable.size1_0); the host is broken")
    }
    guard let registration = PluginExport.registration() else {
        return refuse(COMMHOST_EFAIL, "init was called before the entry function returned a descriptor")
    }
    var configuration = config.ptr.map { Array(UnsafeRawBufferPointer(start: $0, count: config.len)) } ?? []
    if configuration.isEmpty { configuration = Array("null".utf8) }
    let host = PluginHost(table: HostTable(table: table), configuration: configuration)
    do {
        let library = try registration.library.init(host: host)
        let runtime = LibraryRuntime(host: host, library: library, slots: registration.slots,
                                     version: registration.version)
        outLibrary.pointee = Unmanaged.passRetained(runtime).toOpaque()
        return COMMHOST_OK
    } catch {
        let status = host.fail(error)
        host.retire()
        return status
    }
}

/// The library's deinit: drops handed-off instances, sessions and the library.
func deinitLibrary(_ library: UnsafeMutableRawPointer?) {
    guard let library else { return }
    Unmanaged<LibraryRuntime>.fromOpaque(library).takeRetainedValue().retire()
}

/// session_start: the session's ``Session`` object, then the library's
/// ``CommLibrary/sessionStarted(_:cause:)``.
func startSession(_ library: UnsafeMutableRawPointer?, _ session: OpaquePointer?, _ cause: commhost_session_cause,
                  _ outData: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status {
    guard let library else { return COMMHOST_EINVAL }
    let runtime = LibraryRuntime.borrow(library)
    guard let session, let outData else {
        runtime.host.setError("session_start was called with a NULL session or out_session_data")
        return COMMHOST_EINVAL
    }
    do {
        let started = try runtime.session(for: session)
        outData.pointee = Unmanaged.passUnretained(started).toOpaque()
        try SerializedContext.run(on: session) { try started.start(cause: SessionCause(cause)) }
        return COMMHOST_OK
    } catch {
        return runtime.host.fail(error)
    }
}

/// session_end: the library's ``CommLibrary/sessionEnded(_:cause:)``, then
/// the session's state is dropped.
func endSession(_ library: UnsafeMutableRawPointer?, _ session: OpaquePointer?, _ data: UnsafeMutableRawPointer?,
                _ cause: commhost_session_cause) {
    guard let library, let session, let ended = LibraryRuntime.borrow(library).endSession(session) else { return }
    SerializedContext.run(on: session) {
        ended.runtime.library.sessionEnded(ended, cause: SessionCause(cause))
        ended.end()
    }
}

/// session_writable: the library's ``CommLibrary/sessionWritable(_:)``.
func sessionWritable(_ library: UnsafeMutableRawPointer?, _ session: OpaquePointer?,
                     _ data: UnsafeMutableRawPointer?) {
    guard let library, let session else { return }
    let runtime = LibraryRuntime.borrow(library)
    guard let writable = try? runtime.session(for: session) else { return }
    SerializedContext.run(on: session) { runtime.library.sessionWritable(writable) }
}

/// A handler's open: a new instance of the slot's type.
func openInstance(_ handler: UnsafePointer<commhost_handler>?, _ library: UnsafeMutableRawPointer?,
                  _ comm: OpaquePointer?, _ message: UnsafePointer<commhost_message>?,
                  _ outInstance: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status {
    guard let library else { return COMMHOST_EINVAL }
    let runtime = LibraryRuntime.borrow(library)
    guard let slot = HandlerSlot.borrow(handler), let comm, let outInstance else {
        runtime.host.setError("open was called with a NULL handler, comm or out_instance")
        return COMMHOST_EINVAL
    }
    do {
        let box = InstanceBox(slot: slot, runtime: runtime)
        box.attach(try Comm(retaining: comm, session: runtime.session(ofComm: comm)))
        try SerializedContext.run(on: box.sessionHandle) {
            box.handler = try slot.type.init(comm: box.comm!, open: CommMessage(borrowing: message))
        }
        outInstance.pointee = box.retainedPointer()
        return COMMHOST_OK
    } catch {
        return runtime.host.fail(error)
    }
}

/// A handler's message: hands it to the instance.
func receiveMessage(_ handler: UnsafePointer<commhost_handler>?, _ instance: UnsafeMutableRawPointer?,
                    _ comm: OpaquePointer?, _ message: UnsafePointer<commhost_message>?) -> commhost_status {
    guard let instance else { return COMMHOST_EINVAL }
    let box = InstanceBox.borrow(instance)
    do {
        try SerializedContext.run(on: box.sessionHandle) {
            try box.handler?.receive(CommMessage(borrowing: message))
        }
        return COMMHOST_OK
    } catch {
        return box.runtime.host.fail(error)
    }
}

/// A handler's close: tells the instance, then drops the host's reference to it.
func closeInstance(_ handler: UnsafePointer<commhost_handler>?, _ instance: UnsafeMutableRawPointer?,
                   _ comm: OpaquePointer?, _ message: UnsafePointer<commhost_message>?,
                   _ cause: commhost_close_cause) {
    guard let instance else { return }
    let box = InstanceBox.take(instance)
    if box.snapshotted {
        box.runtime.forgetHandedOff(box)
    }
    SerializedContext.run(on: box.sessionHandle) {
        box.handler?.close(cause: CloseCause(cause), message: CommMessage(borrowing: message))
    }
}

/// A handler's snapshot: the instance's state as JSON into the host's writer.
func snapshotInstance(_ handler: UnsafePointer<commhost_handler>?, _ instance: UnsafeMutableRawPointer?,
                      _ comm: OpaquePointer?, _ writer: UnsafePointer<commhost_writer>?) -> commhost_status {
    guard let instance else { return COMMHOST_EINVAL }
    let box = InstanceBox.borrow(instance)
    let writeEnd = MemoryLayout<commhost_writer>.offset(of: \.write)! + MemoryLayout<UnsafeRawPointer?>.size
    guard let writer, writer.pointee.struct_size >= writeEnd, let write = writer.pointee.write else {
        box.runtime.host.setError("snapshot was called with a NULL or short writer")
        return COMMHOST_EINVAL
    }
    guard let handler = box.handler as? any SurvivesReload else {
        box.runtime.host.setError("handler \"\(box.slot.name)\" does not hand off state")
        return COMMHOST_EUNSUPPORTED
    }
    do {
        let bytes = try SerializedContext.run(on: box.sessionHandle) { try HandlerSlot.snapshot(handler) }
        let status = bytes.withUnsafeBufferPointer { write(writer, $0.baseAddress, $0.count) }
        guard status == COMMHOST_OK else {
            box.runtime.host.setError("the host's writer refused \(bytes.count) bytes of state "
                + "(\(PluginStatus(rawValue: status)))")
            return status
        }
        if !box.snapshotted {
            box.snapshotted = true
            box.runtime.rememberHandedOff(box)
        }
        return COMMHOST_OK
    } catch {
        return box.runtime.host.fail(error)
    }
}

/// A handler's restore: a new instance of the slot's type from saved state
/// written by library version `fromVersion`.
func restoreInstance(_ handler: UnsafePointer<commhost_handler>?, _ library: UnsafeMutableRawPointer?,
                     _ comm: OpaquePointer?, _ fromVersion: commhost_str, _ state: commhost_bytes,
                     _ outInstance: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> commhost_status {
    guard let library else { return COMMHOST_EINVAL }
    let runtime = LibraryRuntime.borrow(library)
    guard let slot = HandlerSlot.borrow(handler), let comm, let outInstance else {
        runtime.host.setError("restore was called with a NULL handler, comm or out_instance")
        return COMMHOST_EINVAL
    }
    guard let type = slot.survivesReloadType else {
        runtime.host.setError("handler \"\(slot.name)\" does not hand off state")
        return COMMHOST_EUNSUPPORTED
    }
    let bytes = state.ptr.map { Array(UnsafeBufferPointer(start: $0, count: state.len)) } ?? []
    let version = String(commhost: fromVersion)
    do {
        let box = InstanceBox(slot: slot, runtime: runtime)
        box.attach(try Comm(retaining: comm, session: runtime.session(ofComm: comm)))
        try SerializedContext.run(on: box.sessionHandle) {
            box.handler = try HandlerSlot.restore(type, comm: box.comm!, fromVersion: version, state: bytes)
        }
        outInstance.pointee = box.retainedPointer()
        return COMMHOST_OK
    } catch {
        return runtime.host.fail(error)
    }
}
