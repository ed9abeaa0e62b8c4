import CommPluginAPI
import Glibc

/// The `commhost_host` tables: one per loaded library, passed to its init,
/// whose `host_data` names the library, so every host function knows which
/// library calls it from any thread (ABI requirement 10). Handles arrive as
/// tokens and are checked in `CommHandle.table` / `SessionHandle.table`;
/// a bad one is logged with the library's name and refused.
enum HostAPI {
    /// Guards where `log` from plugins goes (any plugin thread reads it); set by the host at start.
    static let logger = Locked(Logger())

    /// Guards every table made, kept so they stay reachable: a plugin may keep its table
    /// pointer until it is unloaded, which for Swift code is never.
    private static let tables = Locked<[UnsafePointer<commhost_host>]>([])

    /// A new table for `library`. It keeps the library object alive for the
    /// life of the process (a call through it after retire is refused).
    static func makeTable(for library: PluginLibrary) -> UnsafePointer<commhost_host> {
        // Field by field from a zeroed table: fields a newer header adds stay
        // zero (absent) until this host fills them in.
        var host = commhost_host()
        host.struct_size = MemoryLayout<commhost_host>.size
        host.abi_major = UInt16(COMMHOST_ABI_MAJOR)
        host.abi_minor = UInt16(COMMHOST_ABI_MINOR)
        host.reserved = 0
        host.host_data = Unmanaged.passRetained(library).toOpaque()
        host.get_extension = { _, _ in nil }
        host.log = { host, level, message in
            guard let library = HostAPI.library(host) else { return }
            HostAPI.pluginLog(library, level, message)
        }
        host.set_error = { _, message in CallContext.current.errorText = HostAPI.string(message) ?? "<error text is not valid UTF-8>" }
        host.send = { host, comm, message in
            HostAPI.withComm(host, comm, "send") { library, comm in comm.hostSend(from: library, message) }
        }
        host.close = { host, comm, message in
            HostAPI.withComm(host, comm, "close") { library, comm in comm.hostClose(from: library, message) }
        }
        host.open = { host, session, handlerName, targetName, commID, message, instance, outComm in
            HostAPI.withSession(host, session, "open") { library, session in
                guard let handler = HostAPI.string(handlerName), let target = HostAPI.string(targetName),
                      let id = HostAPI.string(commID) else { return COMMHOST_EINVAL }
                let (status, opened) = session.hostOpen(from: library, handlerName: handler, targetName: target, commID: id,
                                                       message: message, instance: instance, retain: outComm != nil)
                if let outComm, let opened, status == COMMHOST_OK { outComm.pointee = opened.opaque }
                return status
            }
        }
        host.comm_id = { host, comm in HostAPI.commNames(host, comm, "comm_id")?.firstSlice ?? commhost_str(ptr: nil, len: 0) }
        host.target_name = { host, comm in HostAPI.commNames(host, comm, "target_name")?.secondSlice ?? commhost_str(ptr: nil, len: 0) }
        host.comm_session = { host, comm in
            guard let library = HostAPI.library(host) else { return nil }
            switch CommHandle.table.lookup(HostAPI.token(comm)) {
            case .live(let object): return object.hostSession?.opaque
            case .ended: return nil
            case .invalid:
                HostAPI.badHandle(library, "comm_session", "comm", comm)
                return nil
            }
        }
        host.retain_comm = { host, comm in
            HostAPI.reference(host, comm, "retain_comm", CommHandle.table.retain)
        }
        host.release_comm = { host, comm in
            HostAPI.reference(host, comm, "release_comm", CommHandle.table.release)
        }
        host.session_id = { host, session in
            guard let library = HostAPI.library(host) else { return commhost_str(ptr: nil, len: 0) }
            guard let names = SessionHandle.table.names(HostAPI.token(session)) else {
                HostAPI.badHandle(library, "session_id", "session", session)
                return commhost_str(ptr: nil, len: 0)
            }
            return names.firstSlice
        }
        host.session_data = { host, session in
            guard let library = HostAPI.library(host) else { return nil }
            switch SessionHandle.table.lookup(HostAPI.token(session)) {
            case .live(let object): return object.hostSessionData(for: library)
            case .ended: return nil
            case .invalid:
                HostAPI.badHandle(library, "session_data", "session", session)
                return nil
            }
        }
        host.retain_session = { host, session in
            HostAPI.reference(host, session, "retain_session", SessionHandle.table.retain, kind: "session")
        }
        host.release_session = { host, session in
            HostAPI.reference(host, session, "release_session", SessionHandle.table.release, kind: "session")
        }
        host.post = { host, session, comm, function, data in
            HostAPI.schedule(host, session, comm, "post", delay: 0, period: nil, function, data).status
        }
        host.timer_start = { host, session, comm, delay, period, function, data, outTimer in
            let (status, id) = HostAPI.schedule(host, session, comm, "timer_start", delay: delay, period: period, function, data)
            if status == COMMHOST_OK { outTimer?.pointee = id }
            return status
        }
        host.timer_cancel = { host, timer in
            guard let library = HostAPI.library(host) else { return COMMHOST_EINVAL }
            guard PluginTimers.cancel(timer) else {
                library.logHandleMisuse("timer_cancel with timer \(timer), which is unknown or has had its last call")
                return COMMHOST_EHANDLE
            }
            return COMMHOST_OK
        }
        let pointer = ABIStruct.permanentCopy(of: &host, size: MemoryLayout<commhost_host>.size,
                                              alignment: MemoryLayout<commhost_host>.alignment)
        tables.withLock { $0.append(pointer) }
        return pointer
    }

    /// The library a table belongs to; nil for a NULL table.
    @inline(__always)
    static func library(_ host: UnsafePointer<commhost_host>?) -> PluginLibrary? {
        guard let data = host?.pointee.host_data else { return nil }
        return Unmanaged<PluginLibrary>.fromOpaque(data).takeUnretainedValue()
    }

    /// A borrowed slice as Swift text; nil when it is not valid UTF-8 or
    /// has a NULL pointer with a non-zero length.
    static func string(_ slice: commhost_str) -> String? {
        if slice.len == 0 { return "" }
        guard let ptr = slice.ptr else { return nil }
        let bytes = UnsafeRawBufferPointer(start: ptr, count: slice.len)
        return String(validating: bytes, as: UTF8.self)
    }

    @inline(__always)
    private static func token(_ handle: OpaquePointer?) -> UInt {
        UInt(bitPattern: handle.map { Int(bitPattern: UnsafeRawPointer($0)) } ?? 0)
    }

    /// Runs `body` with the live comm behind `comm`: ECLOSED for a closed
    /// comm the plugin still holds, EHANDLE (logged) for a bad handle.
    @inline(__always)
    private static func withComm(_ host: UnsafePointer<commhost_host>?, _ comm: OpaquePointer?, _ function: String,
                                 _ body: (PluginLibrary, CommHandle) -> commhost_status) -> commhost_status {
        // The table holds its library for the life of the process, so the call borrows it
        // (no retain and release on every send).
        guard let data = host?.pointee.host_data else { return COMMHOST_EINVAL }
        return Unmanaged<PluginLibrary>.fromOpaque(data)._withUnsafeGuaranteedRef { library in
            withComm(library, comm, function, body)
        }
    }

    @inline(__always)
    private static func withComm(_ library: PluginLibrary, _ comm: OpaquePointer?, _ function: String,
                                 _ body: (PluginLibrary, CommHandle) -> commhost_status) -> commhost_status {
        guard !library.isRetired else { return COMMHOST_ECLOSED }
        let token = token(comm)
        // The comm whose callback runs on this thread (a send from its
        // message callback): held by the host, so valid without a lookup.
        let current = CallContext.currentUnretained._withUnsafeGuaranteedRef { context in
            token == context.callCommToken && token != 0 ? context.callComm : nil
        }
        if let current { return current._withUnsafeGuaranteedRef { body(library, $0) } }
        switch CommHandle.table.lookup(token) {
        case .live(let object): return body(library, object)
        case .ended:
            // Logged at debug, for `commhost try` and `inspect --check`: a call on a comm whose close already ran.
            logger.withLock { $0 }.debug("a plugin's \(function) was refused", [("plugin", .string(library.name)),
                                                                              ("status", .string("COMMHOST_ECLOSED")),
                                                                              ("error", .string("the comm's close callback has run"))])
            return COMMHOST_ECLOSED
        case .invalid:
            badHandle(library, function, "comm", comm)
            return COMMHOST_EHANDLE
        }
    }

    private static func withSession(_ host: UnsafePointer<commhost_host>?, _ session: OpaquePointer?, _ function: String,
                                    _ body: (PluginLibrary, SessionHandle) -> commhost_status) -> commhost_status {
        guard let library = library(host) else { return COMMHOST_EINVAL }
        guard !library.isRetired else { return COMMHOST_ECLOSED }
        switch SessionHandle.table.lookup(token(session)) {
        case .live(let object): return body(library, object)
        case .ended: return COMMHOST_ECLOSED
        case .invalid:
            badHandle(library, function, "session", session)
            return COMMHOST_EHANDLE
        }
    }

    private static func commNames(_ host: UnsafePointer<commhost_host>?, _ comm: OpaquePointer?, _ function: String) -> HandleNames? {
        guard let library = library(host) else { return nil }
        guard let names = CommHandle.table.names(token(comm)) else {
            badHandle(library, function, "comm", comm)
            return nil
        }
        return names
    }

    private static func reference(_ host: UnsafePointer<commhost_host>?, _ handle: OpaquePointer?, _ function: String,
                                  _ change: (UInt) -> Bool, kind: String = "comm") -> commhost_status {
        guard let library = library(host) else { return COMMHOST_EINVAL }
        guard change(token(handle)) else {
            badHandle(library, function, kind, handle)
            return COMMHOST_EHANDLE
        }
        return COMMHOST_OK
    }

    private static func schedule(_ host: UnsafePointer<commhost_host>?, _ session: OpaquePointer?, _ comm: OpaquePointer?,
                                 _ function: String, delay: UInt64, period: UInt64?, _ fn: commhost_task_fn?,
                                 _ data: UnsafeMutableRawPointer?) -> (status: commhost_status, id: UInt64) {
        guard let library = library(host) else { return (COMMHOST_EINVAL, 0) }
        guard let fn, session != nil || comm != nil else { return (COMMHOST_EINVAL, 0) }
        guard !library.isRetired else { return (COMMHOST_ECLOSED, 0) }
        let task = PluginTaskFunction(function: fn, data: data)
        if comm != nil {
            var result: (commhost_status, UInt64) = (COMMHOST_ECLOSED, 0)
            let status = withComm(host, comm, function) { library, comm in
                guard let session = comm.hostSession else { return COMMHOST_ECLOSED }
                result = session.hostSchedule(from: library, comm: comm, delayMilliseconds: delay, periodMilliseconds: period, task: task)
                return result.0
            }
            return (status, status == COMMHOST_OK ? result.1 : 0)
        }
        var result: (commhost_status, UInt64) = (COMMHOST_ECLOSED, 0)
        let status = withSession(host, session, function) { library, session in
            result = session.hostSchedule(from: library, comm: nil, delayMilliseconds: delay, periodMilliseconds: period, task: task)
            return result.0
        }
        return (status, status == COMMHOST_OK ? result.1 : 0)
    }

    private static func badHandle(_ library: PluginLibrary, _ function: String, _ kind: String, _ handle: OpaquePointer?) {
        library.logHandleMisuse("\(function) with a \(kind) handle it does not hold (\(token(handle) == 0 ? "NULL" : "0x" + String(token(handle), radix: 16)))")
    }

    private static func pluginLog(_ library: PluginLibrary, _ level: commhost_log_level, _ message: commhost_str) {
        let text = string(message) ?? "<log text is not valid UTF-8>"
        let hostLevel: LogLevel = switch level {
        case COMMHOST_LOG_DEBUG: .debug
        case COMMHOST_LOG_INFO: .info
        case COMMHOST_LOG_WARNING: .warning
        default: .error
        }
        let logger = HostAPI.logger.withLock { $0 }
        logger.log(hostLevel, text, [("plugin", .string(library.name))])
    }
}
