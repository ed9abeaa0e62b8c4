import CommPluginAPI

/// The host's `commhost_host` table for one loaded library: one Swift method
/// per host function, each passing the table back as `host` and turning a
/// missing function pointer into ``PluginStatus/unsupported``. The kit's only
/// raw calls into the host live here.
struct HostTable: @unchecked Sendable {
    // @unchecked: `table` points at the host's table, which the host keeps
    // valid and unchanged until the library's deinit returns (PluginHost
    // stops all calls after that). Every function in it is [any-thread]
    // except set_error ([callback-thread]), which the kit calls only from
    // inside callbacks.
    let table: UnsafePointer<commhost_host>

    /// The `struct_size` of an ABI 1.0 table (`COMMHOST_HOST_SIZE_1_0`, which
    /// Swift cannot import): up to the end of `timer_cancel`.
    static let size1_0 = MemoryLayout<commhost_host>.offset(of: \.timer_cancel)!
        + MemoryLayout<Optional<@convention(c) (UnsafePointer<commhost_host>?, commhost_timer) -> commhost_status>>.size

    /// The type of a task function (`commhost_task_fn`).
    typealias TaskFunction = @convention(c) (UnsafeMutableRawPointer?, commhost_status) -> Void

    private var api: commhost_host { table.pointee }

    func log(_ level: commhost_log_level, _ text: String) {
        guard let log = api.log else { return }
        text.withCommhostStr { log(table, level, $0) }
    }

    func setError(_ text: String) {
        guard let setError = api.set_error else { return }
        text.withCommhostStr { setError(table, $0) }
    }

    func send(_ comm: OpaquePointer, _ message: CommMessage) -> PluginStatus {
        guard let send = api.send else { return .unsupported }
        return PluginStatus(rawValue: message.withBorrowed { send(table, comm, $0) })
    }

    func close(_ comm: OpaquePointer, _ message: CommMessage) -> PluginStatus {
        guard let close = api.close else { return .unsupported }
        return PluginStatus(rawValue: message.withBorrowed { close(table, comm, $0) })
    }

    /// Host open: on success the comm handle, with a reference the caller owns.
    func open(session: OpaquePointer, handler: String, target: String, id: String, message: CommMessage,
              instance: UnsafeMutableRawPointer) -> (status: PluginStatus, comm: OpaquePointer?) {
        guard let open = api.open else { return (.unsupported, nil) }
        var comm: OpaquePointer?
        let status = handler.withCommhostStr { handler in
            target.withCommhostStr { target in
                id.withCommhostStr { id in
                    message.withBorrowed { open(table, session, handler, target, id, $0, instance, &comm) }
                }
            }
        }
        return (PluginStatus(rawValue: status), status == COMMHOST_OK ? comm : nil)
    }

    func commID(_ comm: OpaquePointer) -> String {
        api.comm_id.map { String(commhost: $0(table, comm)) } ?? ""
    }

    func targetName(_ comm: OpaquePointer) -> String {
        api.target_name.map { String(commhost: $0(table, comm)) } ?? ""
    }

    func session(of comm: OpaquePointer) -> OpaquePointer? {
        api.comm_session?(table, comm)
    }

    func retain(comm: OpaquePointer) -> PluginStatus {
        PluginStatus(rawValue: api.retain_comm?(table, comm) ?? COMMHOST_EUNSUPPORTED)
    }

    func release(comm: OpaquePointer) -> PluginStatus {
        PluginStatus(rawValue: api.release_comm?(table, comm) ?? COMMHOST_EUNSUPPORTED)
    }

    func sessionID(_ session: OpaquePointer) -> String {
        api.session_id.map { String(commhost: $0(table, session)) } ?? ""
    }

    func retain(session: OpaquePointer) -> PluginStatus {
        PluginStatus(rawValue: api.retain_session?(table, session) ?? COMMHOST_EUNSUPPORTED)
    }

    func release(session: OpaquePointer) -> PluginStatus {
        PluginStatus(rawValue: api.release_session?(table, session) ?? COMMHOST_EUNSUPPORTED)
    }

    func post(session: OpaquePointer?, comm: OpaquePointer?, _ function: TaskFunction,
              _ data: UnsafeMutableRawPointer) -> PluginStatus {
        PluginStatus(rawValue: api.post?(table, session, comm, function, data) ?? COMMHOST_EUNSUPPORTED)
    }

    func startTimer(session: OpaquePointer?, comm: OpaquePointer?, delay: UInt64, period: UInt64,
                    _ function: TaskFunction, _ data: UnsafeMutableRawPointer)
        -> (status: PluginStatus, timer: commhost_timer) {
        guard let start = api.timer_start else { return (.unsupported, 0) }
        var timer: commhost_timer = 0
        let status = start(table, session, comm, delay, period, function, data, &timer)
        return (PluginStatus(rawValue: status), timer)
    }

    func cancel(timer: commhost_timer) -> PluginStatus {
        PluginStatus(rawValue: api.timer_cancel?(table, timer) ?? COMMHOST_EUNSUPPORTED)
    }
}
