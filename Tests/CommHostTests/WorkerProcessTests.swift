import CommPluginAPI
import Foundation
import XCTest
@testable import CommHost

/// The real `commhost worker` binary, spawned over a socket pair, with the
/// test playing the host's side of the protocol (`WorkerMessage`): hello,
/// requests and their replies, host calls tagged with the request they run
/// under (or 0 from the plugin's own threads), tasks, limits.
final class WorkerProcessTests: XCTestCase {
    private static let comm = WorkerComm(token: 0x1_0000_0001, id: "c1", targetName: "worker.target", session: 5, sessionID: "s-5")

    private func library() throws -> String {
        let dir = try TestSupport.temporaryDirectory(self)
        return try TestSupport.compileC(source: TestSupport.fixture("worker_plugin.c"), output: dir + "/libworker.so", flags: ["-pthread"])
    }

    private func data(_ text: String) -> WorkerPayload { WorkerPayload(data: Array(text.utf8)) }
    /// What the fixture's echo sends back for `data(text)`: the plugin sees empty metadata as `{}`.
    private func echoed(_ text: String) -> WorkerPayload { WorkerPayload(data: Array(text.utf8), metadata: Array("{}".utf8)) }

    // MARK: The conversation

    func testEchoIsSentInsideTheRequestThatCausedItAndAnsweredInTheWorker() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        guard case .hello(let descriptor) = try worker.receive().message else { return XCTFail("no hello") }
        XCTAssertEqual(descriptor.name, "worker")
        XCTAssertEqual(descriptor.version, "1.0")
        XCTAssertEqual(descriptor.handlers.map(\.name), ["worker"])
        XCTAssertEqual(descriptor.handlers[0].callbacks,
                       WorkerHandler.hasMessage | WorkerHandler.hasClose | WorkerHandler.hasSnapshot | WorkerHandler.hasRestore)
        XCTAssertEqual(descriptor.libraryCallbacks, WorkerDescriptor.hasInit | WorkerDescriptor.hasDeinit
                       | WorkerDescriptor.hasSessionStart | WorkerDescriptor.hasSessionEnd)
        let instance = try worker.start(comm: Self.comm)

        let echo = WorkerPayload(data: Array(#"{"do":"echo"}"#.utf8), metadata: Array(#"{"m":1}"#.utf8), buffers: [[1, 2, 3], [], [255]])
        // A comm_msg's send is answered in the worker: no reply is owed for it.
        let request = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: echo))
        let (_, call) = try worker.receive()
        XCTAssertEqual(call, .hostCall(during: request, call: .pipelinedSend(comm: Self.comm.token, message: echo)))
        try worker.expectReply(request, status: COMMHOST_OK)

        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testPipelinedMessagesRunOneAtATimeInTheOrderSent() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        // Many requests before any answer: each one's send, then its reply, in order.
        let requests = try (0..<200).map { n in
            try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"echo","n":\#(n)}"#)))
        }
        for (n, request) in requests.enumerated() {
            let (_, call) = try worker.receive()
            XCTAssertEqual(call, .hostCall(during: request, call: .pipelinedSend(comm: Self.comm.token, message: echoed(#"{"do":"echo","n":\#(n)}"#))))
            try worker.expectReply(request, status: COMMHOST_OK)
        }
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testAPipelinedSendIsRefusedInTheWorkerWhenBlockedClosedOrNotJSON() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        // Data that is not a JSON object: EJSON with the reason, nothing sent.
        let bad = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"send_bad"}"#)))
        let (_, reply) = try worker.receive()
        guard case .reply(COMMHOST_EJSON, .some(let reason), _, _) = reply else { return XCTFail("\(reply) for request \(bad)") }
        XCTAssertFalse(reason.isEmpty)
        // The very bytes of the request handed back are not checked again:
        // the host validated them when they arrived (and validates every send
        // it is given). This test, as host, did not, so the broken data goes through.
        let verbatim = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"echo",}"#)))
        let (_, passed) = try worker.receive()
        XCTAssertEqual(passed, .hostCall(during: verbatim, call: .pipelinedSend(comm: Self.comm.token, message: echoed(#"{"do":"echo",}"#))))
        try worker.expectReply(verbatim, status: COMMHOST_OK)

        // Past the high-water mark: EAGAIN until the session's session_writable request.
        try worker.send(.sessionBlocked(session: Self.comm.session), id: 0)
        let blocked = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"echo"}"#)))
        try worker.expectReply(blocked, status: COMMHOST_EAGAIN)
        try worker.expectReply(try worker.request(.sessionWritable(session: Self.comm.session)), status: COMMHOST_OK)
        let again = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"echo"}"#)))
        let (_, call) = try worker.receive()
        XCTAssertEqual(call, .hostCall(during: again, call: .pipelinedSend(comm: Self.comm.token, message: echoed(#"{"do":"echo"}"#))))
        try worker.expectReply(again, status: COMMHOST_OK)

        // A comm the plugin opened and the host closed: ECLOSED in the worker.
        let child: UInt64 = 0x2_0000_0002
        let open = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"open_child"}"#)))
        var (id, message) = try worker.receive()
        guard case .hostCall(open, .open) = message else { return XCTFail("\(message)") }
        try worker.send(.hostReply(status: COMMHOST_OK, value: child, text: "child"), id: id)
        (id, message) = try worker.receive()
        XCTAssertEqual(message, .hostCall(during: open, call: .pipelinedSend(comm: child, message: data(#"{"child_id":"child"}"#))))
        (id, message) = try worker.receive()
        XCTAssertEqual(message, .hostCall(during: open, call: .releaseComm(child)))
        try worker.answer(id, status: COMMHOST_OK)
        try worker.expectReply(open, status: COMMHOST_OK)
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testAHostCallStatusReachesThePluginAndItsTextBecomesTheErrorText() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        // open is answered by the host (a send under a comm_msg is not): its refusal is the callback's status.
        let request = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"open_child"}"#)))
        let (callID, _) = try worker.receive()
        try worker.send(.hostReply(status: COMMHOST_EJSON, value: 0, text: "data is not a JSON object"), id: callID)
        try worker.expectReply(request, status: COMMHOST_EJSON, error: "data is not a JSON object")
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testSetErrorTextComesBackInTheReply() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        let failing = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"fail"}"#)))
        try worker.expectReply(failing, status: COMMHOST_EFAIL, error: "worker failed on purpose")

        var refused = Self.comm
        refused.token = 0x1_0000_0009
        refused.id = "c9"
        let open = try worker.request(.open(handler: 0, comm: refused, message: data(#"{"fail_open":true}"#)))
        try worker.expectReply(open, status: COMMHOST_EINVAL, error: "open refused")

        let noHandler = try worker.request(.message(handler: 3, instance: instance, comm: Self.comm.token, message: data("{}")))
        let (_, reply) = try worker.receive()
        guard case .reply(COMMHOST_EINVAL, .some(let text), _, _) = reply else { return XCTFail("\(reply) for request \(noHandler)") }
        XCTAssertTrue(text.contains("no handler 3"), text)
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testAPluginThreadsSendCarriesNoRequest() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        let request = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"thread_send"}"#)))
        // The reply and the thread's send race; both must come.
        var replied = false, sent = false
        while !(replied && sent) {
            let (id, message) = try worker.receive()
            switch message {
            case .reply(let status, _, _, _):
                XCTAssertEqual(id, request)
                XCTAssertEqual(status, COMMHOST_OK)
                replied = true
            case .hostCall(let during, let call):
                XCTAssertEqual(during, 0, "a send from the plugin's own thread runs under no request")
                XCTAssertEqual(call, .send(comm: Self.comm.token, message: data(#"{"t":1}"#)))
                try worker.answer(id, status: COMMHOST_OK)
                sent = true
            default:
                return XCTFail("unexpected \(message)")
            }
        }
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testNamesAndSessionDataAreAnsweredInTheWorker() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        let names = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"names"}"#)))
        let (_, call) = try worker.receive()
        XCTAssertEqual(call, .hostCall(during: names, call: .pipelinedSend(comm: Self.comm.token, message: data(
            #"{"comm_id":"c1","target_name":"worker.target","session_id":"s-5","session_data":true}"#))))
        try worker.expectReply(names, status: COMMHOST_OK)

        // A comm the plugin opens is named by the host's reply.
        let child: UInt64 = 0x2_0000_0002
        let open = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"open_child"}"#)))
        var (id, message) = try worker.receive()
        XCTAssertEqual(message, .hostCall(during: open, call: .open(session: Self.comm.session, handler: "worker", target: "worker.child",
                                                                    commID: "", message: data(#"{"child":true}"#), instance: 0,
                                                                    wantsReference: true)))
        try worker.send(.hostReply(status: COMMHOST_OK, value: child, text: "0123456789abcdef0123456789abcdef"), id: id)
        (id, message) = try worker.receive()
        XCTAssertEqual(message, .hostCall(during: open, call: .pipelinedSend(comm: child, message: data(#"{"child_id":"0123456789abcdef0123456789abcdef"}"#))))
        (id, message) = try worker.receive()
        XCTAssertEqual(message, .hostCall(during: open, call: .releaseComm(child)))
        try worker.answer(id, status: COMMHOST_OK)
        try worker.expectReply(open, status: COMMHOST_OK)
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testATimerIsScheduledRunAsTasksAndForgottenAfterItsLastCall() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        let start = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"timer"}"#)))
        let (callID, call) = try worker.receive()
        guard case .hostCall(start, .schedule(session: 0, comm: Self.comm.token, delayMilliseconds: 10, periodMilliseconds: 10,
                                              let task)) = call else { return XCTFail("\(call)") }
        let timer: UInt64 = 77
        try worker.send(.hostReply(status: COMMHOST_OK, value: timer, text: ""), id: callID)
        try worker.expectReply(start, status: COMMHOST_OK)

        for tick in 1...3 {
            let run = try worker.request(.task(task: task, status: COMMHOST_OK))
            var (id, message) = try worker.receive()
            XCTAssertEqual(message, .hostCall(during: run, call: .send(comm: Self.comm.token, message: data(#"{"tick":\#(tick)}"#))))
            try worker.answer(id, status: COMMHOST_OK)
            if tick == 3 {
                (id, message) = try worker.receive()
                XCTAssertEqual(message, .hostCall(during: run, call: .timerCancel(timer)))
                try worker.answer(id, status: COMMHOST_OK)
            }
            try worker.expectReply(run, status: COMMHOST_OK)
        }
        let last = try worker.request(.task(task: task, status: COMMHOST_ECANCELED))
        let (id, message) = try worker.receive()
        XCTAssertEqual(message, .hostCall(during: last, call: .send(comm: Self.comm.token, message: data(#"{"last":-12}"#))))
        try worker.answer(id, status: COMMHOST_OK)
        try worker.expectReply(last, status: COMMHOST_OK)
        // After its last call the task is gone: a run the host should not send is refused, not made.
        let extra = try worker.request(.task(task: task, status: COMMHOST_OK))
        let (_, refused) = try worker.receive()
        guard case .reply(COMMHOST_EINVAL, .some(let text), _, _) = refused else { return XCTFail("\(refused) for request \(extra)") }
        XCTAssertTrue(text.contains("no task"), text)
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testAPostRunsOnceAndARefusedScheduleIsNeverRun() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        var tasks: [UInt64] = []
        for status in [COMMHOST_OK, COMMHOST_ECLOSED] {
            let post = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"post"}"#)))
            let (callID, call) = try worker.receive()
            guard case .hostCall(post, .schedule(session: 0, comm: Self.comm.token, delayMilliseconds: 0, periodMilliseconds: nil,
                                                 let task)) = call else { return XCTFail("\(call)") }
            tasks.append(task)
            try worker.answer(callID, status: status)
            try worker.expectReply(post, status: status)
        }
        let run = try worker.request(.task(task: tasks[0], status: COMMHOST_OK))
        let (id, message) = try worker.receive()
        XCTAssertEqual(message, .hostCall(during: run, call: .send(comm: Self.comm.token, message: data(#"{"posted":0}"#))))
        try worker.answer(id, status: COMMHOST_OK)
        try worker.expectReply(run, status: COMMHOST_OK)
        for task in tasks {
            _ = try worker.request(.task(task: task, status: COMMHOST_OK))
            let (_, reply) = try worker.receive()
            guard case .reply(COMMHOST_EINVAL, _, _, _) = reply else { return XCTFail("task \(task) ran again: \(reply)") }
        }
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testACallbackMayWaitForItsOwnThreadsHostCall() throws {
        // The callback joins a thread of the plugin's that waits for the host's
        // reply: whoever runs the comm_msg, another part of the worker reads it.
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        for status in [COMMHOST_ECLOSED, COMMHOST_EINVAL] {
            let request = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"thread_post"}"#)))
            let (callID, call) = try worker.receive()
            guard case .hostCall(0, .schedule(session: 0, comm: Self.comm.token, delayMilliseconds: 0, periodMilliseconds: nil, _)) = call else {
                return XCTFail("\(call)")
            }
            try worker.answer(callID, status: status)
            try worker.expectReply(request, status: status)
        }
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testSnapshotBytesRestoreIntoANewInstance() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        for _ in 0..<12 {
            let noop = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data("{}")))
            try worker.expectReply(noop, status: COMMHOST_OK)
        }
        let snapshot = try worker.request(.snapshot(handler: 0, instance: instance, comm: Self.comm.token))
        let (_, reply) = try worker.receive()
        XCTAssertEqual(reply, .reply(status: COMMHOST_OK, error: nil, value: 0, bytes: Array("12".utf8)), "request \(snapshot)")

        var moved = Self.comm
        moved.token = 0x1_0000_0003
        let restore = try worker.request(.restore(handler: 0, comm: moved, fromVersion: "1.0", state: Array("12".utf8)))
        let (_, restored) = try worker.receive()
        guard case .reply(COMMHOST_OK, nil, let second, _) = restored, second != 0, second != instance else {
            return XCTFail("\(restored) for request \(restore)")
        }
        var unreadable = moved
        unreadable.token = 0x1_0000_0004
        let stale = try worker.request(.restore(handler: 0, comm: unreadable, fromVersion: "0.9", state: []))
        try worker.expectReply(stale, status: COMMHOST_ESTATE)
        let again = try worker.request(.snapshot(handler: 0, instance: second, comm: moved.token))
        let (_, bytes) = try worker.receive()
        XCTAssertEqual(bytes, .reply(status: COMMHOST_OK, error: nil, value: 0, bytes: Array("12".utf8)), "request \(again)")
        try worker.close(instance: second, comm: moved)
        try worker.finish(instance: instance, comm: Self.comm)
    }

    // MARK: Ending

    func testAClosedChannelEndsTheWorkerWithStatusZero() throws {
        let worker = try WorkerPeer.spawn(library: try library(), test: self)
        _ = try worker.receive()
        worker.closeHostEnd()
        let status = try worker.waitForExit()
        XCTAssertTrue(status.exited, "\(status)")
        XCTAssertEqual(status.code, 0)
    }

    func testALibraryWithoutEntryIsRefusedAndTheWorkerExitsOne() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        try "int not_a_plugin(void) { return 1; }\n".write(toFile: dir + "/plain.c", atomically: true, encoding: .utf8)
        let path = try TestSupport.compileC(source: dir + "/plain.c", output: dir + "/libplain.so")
        let worker = try WorkerPeer.spawn(library: path, test: self)
        let (_, message) = try worker.receive()
        guard case .refusal(let reason) = message else { return XCTFail("\(message)") }
        XCTAssertTrue(reason.contains("no entry symbol commhost_plugin_entry"), reason)
        let status = try worker.waitForExit()
        XCTAssertTrue(status.exited && status.code == 1, "\(status)")
    }

    func testUsageErrorsExitTwo() throws {
        for arguments in [["worker"], ["worker", "--library", "/x.so"], ["worker", "--fd", "1", "--library", "/x.so"],
                          ["worker", "--fd", "99", "--library", "/x.so"], ["worker", "--fd", "3"],
                          ["worker", "--fd", "3", "--library", "/x.so", "--cpu-seconds", "0"],
                          ["worker", "--fd", "3", "--library", "/x.so", "--bogus", "1"]] {
            let result = try TestSupport.run(TestSupport.commhostBinary, arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.output)")
        }
    }

    // MARK: Limits

    func testLimitsAreInForceInThePlugin() throws {
        let worker = try WorkerPeer.spawn(library: try library(), arguments: ["--open-files", "64", "--cpu-seconds", "30"], test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        let request = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"limits"}"#)))
        let (_, call) = try worker.receive()
        XCTAssertEqual(call, .hostCall(during: request, call: .pipelinedSend(comm: Self.comm.token, message: data(#"{"nofile":64,"cpu":30}"#))))
        try worker.expectReply(request, status: COMMHOST_OK)
        try worker.finish(instance: instance, comm: Self.comm)
    }

    func testAPluginPastItsCPUSecondsIsKilledByTheKernel() throws {
        let worker = try WorkerPeer.spawn(library: try library(), arguments: ["--cpu-seconds", "1"], test: self)
        _ = try worker.receive()
        let instance = try worker.start(comm: Self.comm)
        _ = try worker.request(.message(handler: 0, instance: instance, comm: Self.comm.token, message: data(#"{"do":"spin"}"#)))
        let status = try worker.waitForExit(seconds: 30)
        XCTAssertFalse(status.exited, "\(status)")
        XCTAssertTrue([SIGXCPU, SIGKILL].contains(status.code), "died of signal \(status.code), expected SIGXCPU or SIGKILL")
    }
}

/// The host's side of one spawned worker, as the test plays it.
final class WorkerPeer {
    let channel: WorkerChannel
    let pid: pid_t
    private let fd: Int32
    private var nextID: UInt64 = 1
    private var reaped = false

    /// How the worker ended: `exited` with `code`, or killed by signal `code`.
    struct ExitStatus: CustomStringConvertible {
        var exited: Bool
        var code: Int32
        var description: String { exited ? "exited \(code)" : "killed by signal \(code)" }
    }

    private init(fd: Int32, pid: pid_t) {
        self.fd = fd
        self.pid = pid
        channel = WorkerChannel(fd: fd, maxFrameBytes: 1 << 24)
    }

    /// Spawns `commhost worker --fd 3 --library PATH` with its end of a new
    /// socket pair as descriptor 3; the test's end gives up on a read after
    /// 20 s, so a worker that goes silent fails the test instead of hanging it.
    static func spawn(library: String, arguments extra: [String] = [], test: XCTestCase) throws -> WorkerPeer {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw NSError(domain: "socketpair", code: Int(errno))
        }
        var childEnd = fds[1]
        if childEnd == 3 {
            // dup2(3, 3) would leave close-on-exec set.
            childEnd = fcntl(3, F_DUPFD_CLOEXEC, 10)
            Glibc.close(3)
        }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, childEnd, 3)
        let argv = [TestSupport.commhostBinary, "worker", "--fd", "3", "--library", library] + extra
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, TestSupport.commhostBinary, &actions, nil, &cArgs, environ)
        Glibc.close(childEnd)
        guard spawned == 0 else {
            Glibc.close(fds[0])
            throw NSError(domain: "posix_spawn", code: Int(spawned))
        }
        let peer = WorkerPeer(fd: fds[0], pid: pid)
        test.addTeardownBlock { peer.tearDown() }
        return peer
    }

    func send(_ message: WorkerMessage, id: UInt64) throws {
        try channel.send(message, id: id)
    }

    /// Sends a request with a fresh id; returns the id.
    func request(_ message: WorkerMessage) throws -> UInt64 {
        defer { nextID += 1 }
        try channel.send(message, id: nextID)
        return nextID
    }

    func receive() throws -> (id: UInt64, message: WorkerMessage) {
        try channel.receive()
    }

    /// Answers host call `id` with `status`.
    func answer(_ id: UInt64, status: Int32) throws {
        try channel.send(WorkerMessage.hostReply(status: status, value: 0, text: ""), id: id)
    }

    /// The next frame must be the reply to `request` with `status` (and `error` text, when given).
    func expectReply(_ request: UInt64, status: Int32, error: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let (id, message) = try receive()
        guard case .reply(let got, let text, _, _) = message else { return XCTFail("expected a reply, got \(message)", file: file, line: line) }
        XCTAssertEqual(id, request, "reply id", file: file, line: line)
        XCTAssertEqual(got, status, "status of request \(request) (text \(text ?? "none"))", file: file, line: line)
        if let error { XCTAssertEqual(text, error, file: file, line: line) }
    }

    /// initialize, session_start of session 5, and open of `comm`; returns the instance.
    func start(comm: WorkerComm) throws -> UInt64 {
        try expectReply(try request(.initialize(config: Array("null".utf8))), status: COMMHOST_OK)
        try expectReply(try request(.sessionStart(session: comm.session, sessionID: comm.sessionID, cause: COMMHOST_SESSION_STARTED)),
                        status: COMMHOST_OK)
        let open = try request(.open(handler: 0, comm: comm, message: WorkerPayload(data: Array(#"{"hello":1}"#.utf8))))
        let (id, message) = try receive()
        guard case .reply(COMMHOST_OK, nil, let instance, _) = message, id == open, instance != 0 else {
            throw NSError(domain: "open", code: 1, userInfo: [NSLocalizedDescriptionKey: "open answered \(message)"])
        }
        return instance
    }

    /// The close request; the plugin logs "closed 1" from inside it, without waiting for an answer.
    func close(instance: UInt64, comm: WorkerComm) throws {
        let close = try request(.close(handler: 0, instance: instance, comm: comm.token, message: WorkerPayload(), cause: COMMHOST_CLOSE_CLIENT))
        let (_, log) = try receive()
        XCTAssertEqual(log, .hostCall(during: close, call: .log(level: COMMHOST_LOG_INFO, text: "closed 1")))
        try expectReply(close, status: COMMHOST_OK)
    }

    /// Closes `comm`, ends its session, deinitializes; the worker must exit 0.
    func finish(instance: UInt64, comm: WorkerComm, file: StaticString = #filePath, line: UInt = #line) throws {
        try close(instance: instance, comm: comm)
        let end = try request(.sessionEnd(session: comm.session, cause: COMMHOST_SESSION_ENDED))
        let (_, log) = try receive()
        XCTAssertEqual(log, .hostCall(during: end, call: .log(level: COMMHOST_LOG_INFO, text: "session_end \(comm.sessionID) data")),
                       file: file, line: line)
        try expectReply(end, status: COMMHOST_OK)
        let done = try request(.deinitialize)
        let (_, last) = try receive()
        XCTAssertEqual(last, .hostCall(during: done, call: .log(level: COMMHOST_LOG_INFO, text: "deinit")), file: file, line: line)
        try expectReply(done, status: COMMHOST_OK)
        XCTAssertThrowsError(try receive(), "the worker closes its end after deinitialize", file: file, line: line)
        let status = try waitForExit()
        XCTAssertTrue(status.exited && status.code == 0, "\(status)", file: file, line: line)
    }

    /// Shuts the test's end down: the worker sees end of stream.
    func closeHostEnd() {
        channel.shutdownBoth()
    }

    /// Waits for the worker to end (failing after `seconds`, and killing it).
    func waitForExit(seconds: Double = 20) throws -> ExitStatus {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                reaped = true
                let signal = status & 0x7f
                return signal == 0 ? ExitStatus(exited: true, code: (status >> 8) & 0xff) : ExitStatus(exited: false, code: signal)
            }
            usleep(10_000)
        }
        throw NSError(domain: "worker", code: 1, userInfo: [NSLocalizedDescriptionKey: "the worker did not exit within \(seconds) s"])
    }

    private func tearDown() {
        if !reaped {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        Glibc.close(fd)
    }
}
