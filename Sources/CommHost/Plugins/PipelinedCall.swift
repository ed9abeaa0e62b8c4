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
    /// reader thread) in a delivery of its own, so that what it sends
    /// reaches the client at once.
    final func delivering(_ body: () -> Void) {
        let delivery = beginDelivery(continuing: nil)
        body()
        delivery?.endDelivery()
    }

    /// For a worker's reader about to run host calls made under this call:
    /// the delivery their output goes out with. `open` is the one the
    /// reader has open (for an earlier call): kept when it is this call's
    /// too, else ended. Nil: none is needed (output goes out as usual).
    func beginDelivery(continuing open: DeliveryBatch?) -> DeliveryBatch? {
        open?.endDelivery()
        return nil
    }
}

/// Output made while a delivery is open is written together when it ends:
/// a worker's reader keeps one open while the frames it has read already
/// are sends for the same session, so a burst of replies costs one write
/// to the client instead of one each.
protocol DeliveryBatch: AnyObject {
    func endDelivery()
}
