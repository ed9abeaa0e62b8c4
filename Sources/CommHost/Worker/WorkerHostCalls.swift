import CommPluginAPI

/// The plugin's host calls in flight: each is sent as a `hostCall` frame
/// tagged with the request the calling thread serves, and the thread sleeps
/// until the reader hands over the `hostReply` of the same id. Calls from
/// any number of threads wait at once; a reply wakes only its own caller's
/// check. Once the channel is gone every waiter, and every later call, gets
/// `COMMHOST_ECLOSED`.
final class WorkerHostCalls: @unchecked Sendable {
    // @unchecked: every mutable property is touched only holding `lock`.

    /// The host's answer to one call.
    struct Reply: Equatable, Sendable {
        var status: Int32
        var value: UInt64 = 0
        var text: String = ""

        static let closed = Reply(status: COMMHOST_ECLOSED)
    }

    private let channel: WorkerChannel
    /// Guards `nextID` and the calls waiting for replies; each caller sleeps on it until its reply comes.
    private let lock = ConditionLock()
    private var nextID: UInt64 = 1
    /// Calls waiting for their reply, and the replies that came.
    private var waiting: [UInt64: Reply?] = [:]
    private var closed = false

    init(channel: WorkerChannel) {
        self.channel = channel
    }

    /// Sends `call` and waits for the host's reply. On a thread serving a
    /// request the call is tagged with it, so the host runs it where the
    /// in-process call would run (inside that callback).
    func call(_ call: WorkerHostCall) -> Reply {
        let during = WorkerCallContext.current.request
        let id: UInt64? = lock.withLock {
            guard !closed else { return nil }
            defer { nextID += 1 }
            waiting[nextID] = .some(nil)
            return nextID
        }
        guard let id else { return .closed }
        do {
            try channel.send(WorkerMessage.hostCall(during: during, call: call), id: id)
            // The host answers only what it has read.
            try channel.flushHeld()
        } catch {
            lock.withLock { waiting[id] = nil }
            return .closed
        }
        return lock.withLock {
            while true {
                if case .some(.some(let reply)) = waiting[id] {
                    waiting[id] = nil
                    return reply
                }
                if closed {
                    waiting[id] = nil
                    return .closed
                }
                lock.wait()
            }
        }
    }

    /// Sends `call` without waiting for an answer (log). A reply the host
    /// may send for it is dropped by `deliver`.
    func notify(_ call: WorkerHostCall) {
        sendUnanswered { during in WorkerMessage.hostCall(during: during, call: call) }
    }

    /// Sends a `send` answered in the worker under a pipelined request
    /// (`pipelinedSend`), encoded from the plugin's borrowed message.
    func notifyPipelinedSend(comm: UInt64, payload: PayloadView?) {
        sendUnanswered { during in PipelinedSendFrame(during: during, comm: comm, payload: payload) }
    }

    /// Sends the frame `make` builds for this thread's request, with a call
    /// id of its own and nobody waiting for a reply; nothing once closed.
    private func sendUnanswered<Frame: WorkerFrame>(_ make: (_ during: UInt64) -> Frame) {
        let during = WorkerCallContext.current.request
        let id: UInt64? = lock.withLock {
            guard !closed else { return nil }
            defer { nextID += 1 }
            return nextID
        }
        guard let id else { return }
        try? channel.send(make(during), id: id)
    }

    /// The reader got the host's reply to call `id`; one nobody waits for is dropped.
    func deliver(id: UInt64, _ reply: Reply) {
        lock.withLock {
            guard waiting.index(forKey: id) != nil else { return }
            waiting[id] = .some(reply)
            lock.broadcast()
        }
    }

    /// The channel is gone: wakes every waiter with `COMMHOST_ECLOSED` and
    /// refuses every later call.
    func closeAll() {
        lock.withLock {
            closed = true
            lock.broadcast()
        }
    }
}
