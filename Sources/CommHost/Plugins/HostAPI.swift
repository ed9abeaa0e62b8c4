import CommPluginAPI
import Glibc
import Synchronization

/// The `commhost_host_api` table every library gets at init. One table for
/// the process: its functions find their comm through the handle and their
/// library through the calling thread's `CallContext`.
enum HostAPI {
    /// The table, allocated once and never freed.
    // nonisolated(unsafe): written once by the lazy initializer, read-only after.
    nonisolated(unsafe) static let table: UnsafePointer<commhost_host_api> = {
        let table = UnsafeMutablePointer<commhost_host_api>.allocate(capacity: 1)
        table.initialize(to: commhost_host_api(
            struct_size: MemoryLayout<commhost_host_api>.size,
            abi_major: UInt16(COMMHOST_ABI_MAJOR),
            abi_minor: UInt16(COMMHOST_ABI_MINOR),
            reserved: 0,
            get_extension: { _ in nil },
            log: { level, message in HostAPI.pluginLog(level, message) },
            set_error: { message in CallContext.current.errorText = HostAPI.string(message) },
            send: { comm, message in
                guard let comm else { return COMMHOST_EINVAL }
                return CommHandle.from(comm).hostSend(message)
            },
            close: { comm, message in
                guard let comm else { return COMMHOST_EINVAL }
                return CommHandle.from(comm).hostClose(message)
            },
            open: { origin, target, commID, message, instance, outComm in
                guard let origin, let targetName = HostAPI.string(target), let id = HostAPI.string(commID) else {
                    return COMMHOST_EINVAL
                }
                let (status, opened) = CommHandle.from(origin).hostOpen(targetName: targetName, commID: id, message: message, instance: instance)
                if let outComm, let opened { outComm.pointee = opened.opaque }
                return status
            },
            comm_id: { comm in
                guard let comm else { return commhost_str(ptr: nil, len: 0) }
                return CommHandle.from(comm).idSlice
            },
            target_name: { comm in
                guard let comm else { return commhost_str(ptr: nil, len: 0) }
                return CommHandle.from(comm).targetSlice
            },
            retain_comm: { comm in
                guard let comm else { return }
                _ = Unmanaged<CommHandle>.fromOpaque(UnsafeRawPointer(comm)).retain()
            },
            release_comm: { comm in
                guard let comm else { return }
                Unmanaged<CommHandle>.fromOpaque(UnsafeRawPointer(comm)).release()
            }
        ))
        return UnsafePointer(table)
    }()

    /// Where `log` from plugins goes; set by the host at start.
    static let logger = Mutex(Logger())

    /// A borrowed slice as Swift text; nil when it is not valid UTF-8 or
    /// has a NULL pointer with a non-zero length.
    static func string(_ slice: commhost_str) -> String? {
        if slice.len == 0 { return "" }
        guard let ptr = slice.ptr else { return nil }
        let bytes = UnsafeRawBufferPointer(start: ptr, count: slice.len)
        return String(validating: bytes, as: UTF8.self)
    }

    private static func pluginLog(_ level: commhost_log_level, _ message: commhost_str) {
        let text = string(message) ?? "<log text is not valid UTF-8>"
        let library = CallContext.current.library?.name ?? "plugin"
        let hostLevel: LogLevel = switch level {
        case COMMHOST_LOG_DEBUG: .debug
        case COMMHOST_LOG_INFO: .info
        case COMMHOST_LOG_WARNING: .warning
        default: .error
        }
        let logger = HostAPI.logger.withLock { $0 }
        logger.log(hostLevel, text, [("plugin", .string(library))])
    }
}
