import CommPluginAPI

/// The framing between the host and a `commhost worker` child process
/// (issue 12): every frame is a little-endian `UInt32` length of what
/// follows, then a `UInt8` kind (`WorkerMessage.Kind`), a `UInt64` id, and
/// the kind's fields in order. Integers are little-endian; `bytes` and
/// `text` are a `UInt32` length and the raw bytes (binary buffers travel
/// raw, never base64; `data` and `metadata` are the exact JSON bytes); a
/// message is its data, metadata and a `UInt32` count of buffers.
///
/// The host sends *requests* (one per plugin callback, on the thread that
/// makes the callback) and the worker answers each with a `reply` of the
/// same id. While the worker runs a callback, the plugin's host-function
/// calls come back as `hostCall`s carrying the id of that request
/// (`during`), so the host runs them on the thread waiting for it, exactly
/// where an in-process plugin's calls would run; calls from the plugin's
/// own threads carry `during` 0 and run on the host's reader thread. The
/// host answers each `hostCall` with a `hostReply` of its id.
///
/// `message` requests (comm_msg) are *pipelined*: the host does not wait
/// for their reply before it reads the next frame, so it may send several
/// in a row; the worker runs them one at a time in the order they came.
/// Before any other request the host waits until every `message` it sent
/// has been answered, so no other request ever overlaps one. Under a
/// `message` request the plugin's `send` is answered in the worker
/// (`pipelinedSend`, no `hostReply`), so a callback that sends costs no
/// round trip; the host tells the worker when a session went past its
/// high-water mark (`sessionBlocked`), after which sends in it answer
/// `COMMHOST_EAGAIN` until its `sessionWritable` request.
enum WorkerMessage: Equatable, Sendable {
    // Worker -> host, once, first.
    /// The loaded library's descriptor, or why it cannot be served (`refusal`).
    case hello(WorkerDescriptor)
    /// The library could not be loaded or its descriptor is refused.
    case refusal(String)

    // Host -> worker: requests.
    case initialize(config: [UInt8])
    case open(handler: UInt32, comm: WorkerComm, message: WorkerPayload)
    case message(handler: UInt32, instance: UInt64, comm: UInt64, message: WorkerPayload)
    case close(handler: UInt32, instance: UInt64, comm: UInt64, message: WorkerPayload, cause: Int32)
    case snapshot(handler: UInt32, instance: UInt64, comm: UInt64)
    case restore(handler: UInt32, comm: WorkerComm, fromVersion: String, state: [UInt8])
    case sessionStart(session: UInt64, sessionID: String, cause: Int32)
    case sessionEnd(session: UInt64, cause: Int32)
    case sessionWritable(session: UInt64)
    /// Run (or give the last call to) the plugin task the worker registered as `task`.
    case task(task: UInt64, status: Int32)
    case deinitialize
    /// Not a request (no reply): sends in `session` answer `COMMHOST_EAGAIN`
    /// in the worker until its next `sessionWritable` request.
    case sessionBlocked(session: UInt64)

    // Worker -> host: the answer to a request.
    /// `status` and the callback's `set_error` text; `value` is the instance
    /// (open, restore); `bytes` the snapshot.
    case reply(status: Int32, error: String?, value: UInt64, bytes: [UInt8])

    // Worker -> host: a host function the plugin called.
    case hostCall(during: UInt64, call: WorkerHostCall)
    // Host -> worker: its answer. `value` is a token (open: the comm; post,
    // timer_start: the timer); `text` names (open: the comm id it got).
    case hostReply(status: Int32, value: UInt64, text: String)
}

/// A comm as the worker first sees it: its token and the names the plugin
/// may read without asking (comm_id, target_name, comm_session).
struct WorkerComm: Equatable, Sendable {
    var token: UInt64
    var id: String
    var targetName: String
    var session: UInt64
    var sessionID: String
}

/// A comm message's parts, owned.
struct WorkerPayload: Equatable, Sendable {
    var data: [UInt8] = []
    var metadata: [UInt8] = []
    var buffers: [[UInt8]] = []
}

/// What the worker's library exports, so the host can build a descriptor of
/// the same shape (NULL where the plugin's is NULL).
struct WorkerDescriptor: Equatable, Sendable {
    var name: String
    var version: String
    var abiMajor: UInt16
    var abiMinor: UInt16
    var flags: UInt32
    /// Which optional library callbacks exist: init, deinit, session_start, session_end, session_writable.
    var libraryCallbacks: UInt32
    var handlers: [WorkerHandler]

    static let hasInit: UInt32 = 1 << 0, hasDeinit: UInt32 = 1 << 1, hasSessionStart: UInt32 = 1 << 2,
               hasSessionEnd: UInt32 = 1 << 3, hasSessionWritable: UInt32 = 1 << 4
}

/// One handler of the worker's library.
struct WorkerHandler: Equatable, Sendable {
    var name: String
    /// Which optional callbacks exist: message, close, snapshot, restore.
    var callbacks: UInt32

    static let hasMessage: UInt32 = 1 << 0, hasClose: UInt32 = 1 << 1, hasSnapshot: UInt32 = 1 << 2, hasRestore: UInt32 = 1 << 3
}

/// A host function called by the plugin in the worker. Functions the
/// worker answers itself are not here: get_extension (none), set_error
/// (kept for the reply), comm_id / target_name / comm_session / session_id
/// (names it was given), session_data (kept by the worker).
enum WorkerHostCall: Equatable, Sendable {
    case log(level: Int32, text: String)
    case send(comm: UInt64, message: WorkerPayload?)
    case close(comm: UInt64, message: WorkerPayload?)
    case open(session: UInt64, handler: String, target: String, commID: String, message: WorkerPayload?, instance: UInt64, wantsReference: Bool)
    case retainComm(UInt64)
    case releaseComm(UInt64)
    case retainSession(UInt64)
    case releaseSession(UInt64)
    /// post (`period` nil) or timer_start on `comm` (when not 0) or else `session`; `task` is the worker's id for fn and data.
    case schedule(session: UInt64, comm: UInt64, delayMilliseconds: UInt64, periodMilliseconds: UInt64?, task: UInt64)
    case timerCancel(UInt64)
    /// A send under a pipelined `message` request, which the worker has
    /// already answered (`COMMHOST_OK`): the host gets no `hostReply` to make.
    case pipelinedSend(comm: UInt64, message: WorkerPayload?)
}
