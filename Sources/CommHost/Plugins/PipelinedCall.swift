import CommPluginAPI

/// A comm_msg callback the host made without waiting for it to return: the
/// comm's library is served by a worker process, and the request went out
/// while the session read on (pipelining; see `WorkerMessage`).
///
/// The session makes one for each comm_msg to a worker-served comm and
/// offers it to the call (`CallContext.pipelineOffer`); the worker proxy
/// takes it when it sends the request and calls `dispatched()`; the
/// worker's reader runs the host calls made under that request with it as
/// `CallContext.pipelinedCall`, so they act as they would inside the
/// callback, and ends it with `finished` when the reply comes (or the
/// worker dies). The Comms layer's subclass gives it meaning.
class PipelinedCall: @unchecked Sendable {
    // @unchecked: subclasses guard their own state.

    /// The request went out: `finished` is owed.
    func dispatched() {}

    /// The callback returned `status` with the plugin's `errorText`; or the
    /// worker died before it did (`COMMHOST_EFAIL`, "handler crashed: …").
    func finished(status: commhost_status, errorText: String?) {}

    /// Runs `body` (host calls made under the callback, on the worker's
    /// reader thread) so that what it sends reaches the client at once.
    func delivering(_ body: () -> Void) { body() }
}
