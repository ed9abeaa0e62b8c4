import CommPluginAPI
import Glibc
import XCTest
@testable import CommHost

/// The host-worker frames (`WorkerMessage`, `WorkerCodec`, `WorkerChannel`):
/// every kind round-trips; a truncated, padded or garbled frame is refused
/// with a reason and never crashes the reader.
final class WorkerCodecTests: XCTestCase {
    private static let payload = WorkerPayload(data: Array(#"{"a":"é"}"#.utf8), metadata: Array(#"{"version":"2.1.0"}"#.utf8),
                                               buffers: [[0, 1, 2, 255], [], Array(repeating: 7, count: 300)])
    private static let comm = WorkerComm(token: 0x1_0000_0002, id: "c0ffee", targetName: "jupyter.widget", session: 3, sessionID: "s-3")

    /// One of every message kind and every host-call kind, with the optional parts both present and absent.
    static let samples: [WorkerMessage] = [
        .hello(WorkerDescriptor(name: "probe", version: "1.2.0", abiMajor: 1, abiMinor: 0, flags: COMMHOST_PLUGIN_CONCURRENT,
                                libraryCallbacks: WorkerDescriptor.hasInit | WorkerDescriptor.hasSessionEnd,
                                handlers: [WorkerHandler(name: "probe", callbacks: WorkerHandler.hasMessage | WorkerHandler.hasClose),
                                           WorkerHandler(name: "ünïcode", callbacks: 0)])),
        .hello(WorkerDescriptor(name: "", version: "", abiMajor: 1, abiMinor: 0, flags: 0, libraryCallbacks: 0, handlers: [])),
        .refusal("descriptor lists no handlers"),
        .initialize(config: Array(#"{"k":[1,2]}"#.utf8)),
        .initialize(config: []),
        .open(handler: 1, comm: comm, message: payload),
        .open(handler: 0, comm: comm, message: WorkerPayload()),
        .message(handler: 0, instance: 0xdead_beef_0000, comm: 9, message: payload),
        .close(handler: 2, instance: 0, comm: 9, message: WorkerPayload(), cause: COMMHOST_CLOSE_SESSION_ENDED),
        .snapshot(handler: 0, instance: 42, comm: 9),
        .restore(handler: 0, comm: comm, fromVersion: "0.9", state: [0, 0, 1]),
        .sessionStart(session: 3, sessionID: "s-3", cause: COMMHOST_SESSION_RESUMED),
        .sessionEnd(session: 3, cause: COMMHOST_SESSION_HANDED_OFF),
        .sessionWritable(session: 3),
        .task(task: 17, status: COMMHOST_ECANCELED),
        .deinitialize,
        .sessionBlocked(session: 3),
        .reply(status: COMMHOST_OK, error: nil, value: 0x7f00_0000_1000, bytes: []),
        .reply(status: COMMHOST_EFAIL, error: "", value: 0, bytes: [1, 2, 3]),
        .reply(status: COMMHOST_EFAIL, error: "probe failed on purpose", value: 0, bytes: []),
        .hostCall(during: 0, call: .log(level: COMMHOST_LOG_WARNING, text: "line \"quoted\"\nnext")),
        .hostCall(during: 5, call: .send(comm: 9, message: payload)),
        .hostCall(during: 5, call: .send(comm: 9, message: nil)),
        .hostCall(during: 5, call: .close(comm: 9, message: WorkerPayload(data: Array(#"{"closing":true}"#.utf8)))),
        .hostCall(during: 0, call: .close(comm: 9, message: nil)),
        .hostCall(during: 5, call: .open(session: 3, handler: "probe", target: "probe.child", commID: "", message: payload,
                                         instance: 0x1234, wantsReference: true)),
        .hostCall(during: 0, call: .open(session: 3, handler: "probe", target: "t", commID: "child-1", message: nil,
                                         instance: 0, wantsReference: false)),
        .hostCall(during: 1, call: .retainComm(9)),
        .hostCall(during: 1, call: .releaseComm(9)),
        .hostCall(during: 1, call: .retainSession(3)),
        .hostCall(during: 1, call: .releaseSession(3)),
        .hostCall(during: 1, call: .schedule(session: 3, comm: 0, delayMilliseconds: 0, periodMilliseconds: nil, task: 1)),
        .hostCall(during: 1, call: .schedule(session: 0, comm: 9, delayMilliseconds: 10, periodMilliseconds: 0, task: 2)),
        .hostCall(during: 1, call: .schedule(session: 3, comm: 9, delayMilliseconds: 10, periodMilliseconds: 25, task: .max)),
        .hostCall(during: 1, call: .timerCancel(4)),
        .hostCall(during: 6, call: .pipelinedSend(comm: 9, message: payload)),
        .hostCall(during: 6, call: .pipelinedSend(comm: 9, message: nil)),
        .hostReply(status: COMMHOST_OK, value: 0x2_0000_0001, text: "0123456789abcdef0123456789abcdef"),
        .hostReply(status: COMMHOST_EHANDLE, value: 0, text: ""),
    ]

    private func body(_ frame: [UInt8]) -> [UInt8] { Array(frame[4...]) }

    private func decode(_ body: [UInt8]) -> Result<(UInt64, WorkerMessage), WorkerCodec.Malformed> {
        body.withUnsafeBytes { raw in Result { () throws(WorkerCodec.Malformed) in try WorkerCodec.decode(raw) } }.map { ($0.id, $0.message) }
    }

    func testEveryMessageKindRoundTripsWithItsID() {
        var kinds = Set<UInt8>()
        for (i, message) in Self.samples.enumerated() {
            let id = UInt64(i) * 0x1_0001 + 1
            let frame = WorkerCodec.encode(message, id: id)
            let length = frame[0..<4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            XCTAssertEqual(length, frame.count - 4, "length prefix of \(message)")
            kinds.insert(frame[4])
            switch decode(body(frame)) {
            case .success(let (decodedID, decoded)):
                XCTAssertEqual(decodedID, id)
                XCTAssertEqual(decoded, message)
            case .failure(let error):
                XCTFail("\(message) did not round-trip: \(error)")
            }
        }
        XCTAssertEqual(kinds, Set((1...17).map(UInt8.init)), "every frame kind is sampled")
    }

    func testEveryTruncatedFrameIsRefusedWithAReason() {
        for message in Self.samples {
            let full = body(WorkerCodec.encode(message, id: 7))
            for cut in 0..<full.count {
                switch decode(Array(full[0..<cut])) {
                case .success(let (_, decoded)): XCTFail("a \(cut)-byte prefix of \(message) decoded as \(decoded)")
                case .failure(let error): XCTAssertFalse(error.description.isEmpty)
                }
            }
        }
    }

    func testTrailingBytesUnknownKindsAndBadTextAreRefused() {
        let reasons: [(String, [UInt8])] = [
            ("left over", body(WorkerCodec.encode(.deinitialize, id: 1)) + [0]),
            ("unknown frame kind 0", [0] + Array(repeating: 0, count: 8)),
            ("unknown frame kind 18", [18] + Array(repeating: 0, count: 8)),
            ("unknown host call 12", [WorkerCodec.Kind.hostCall.rawValue] + Array(repeating: 0, count: 16) + [12]),
            ("not UTF-8", [WorkerCodec.Kind.refusal.rawValue] + Array(repeating: 0, count: 8) + [2, 0, 0, 0, 0xc3, 0x28]),
            // A handler count no frame of this size could hold is refused before anything is allocated for it.
            ("cannot fit", body(WorkerCodec.encode(.hello(WorkerDescriptor(name: "", version: "", abiMajor: 1, abiMinor: 0, flags: 0,
                                                                           libraryCallbacks: 0, handlers: [])), id: 1)).dropLast(4)
                + [0xff, 0xff, 0xff, 0xff]),
            ("ends", [WorkerCodec.Kind.initialize.rawValue] + Array(repeating: 0, count: 8) + [0xff, 0xff, 0xff, 0x7f, 1, 2]),
        ]
        for (expected, bytes) in reasons {
            switch decode(bytes) {
            case .success(let (_, decoded)): XCTFail("expected a refusal naming \"\(expected)\", decoded \(decoded)")
            case .failure(let error): XCTAssertTrue(error.description.contains(expected), "\(error) should say \(expected)")
            }
        }
    }

    func testRandomAndMutatedBytesNeverCrashTheDecoder() {
        var random = SplitMix64(seed: 12)
        var decodedSome = 0
        for _ in 0..<20_000 {
            let count = Int(random.next() % 80)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if case .failure(let error) = decode(bytes) { XCTAssertFalse(error.description.isEmpty) }
        }
        for message in Self.samples {
            let original = body(WorkerCodec.encode(message, id: 3))
            for _ in 0..<300 {
                var bytes = original
                for _ in 0...(random.next() % 3) {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
                switch decode(bytes) {
                case .success: decodedSome += 1
                case .failure(let error): XCTAssertFalse(error.description.isEmpty)
                }
            }
        }
        XCTAssertGreaterThan(decodedSome, 0, "some mutations only change values, and those still decode")
    }

    // MARK: Frames written and read in place

    /// `payload` as the ABI message a plugin or the host hands over, given
    /// to `body` as a borrowed view and as the copy the general frames carry
    /// (where empty data or metadata reads `{}`).
    private func withView<R>(_ payload: WorkerPayload, _ body: (PayloadView, WorkerPayload) -> R) -> R {
        OwnedMessage(data: payload.data, metadata: payload.metadata, buffers: payload.buffers).withMessage { message in
            let copy = OwnedMessage(copying: message)
            return body(PayloadView(message), WorkerPayload(data: copy.data, metadata: copy.metadata, buffers: copy.buffers))
        }
    }

    func testFramesWrittenFromABorrowedMessageAreTheBytesOfTheirMessage() {
        for payload in [Self.payload, WorkerPayload(data: Array("{}".utf8))] {
            withView(payload) { view, payload in
                let request = FrameBuffer(capacity: 8)
                WorkerCodec.append(MessageRequestFrame(handler: 2, instance: 0xdead_beef, comm: 9, payload: view), id: 41, into: request)
                XCTAssertEqual(Array(request.bytes), WorkerCodec.encode(.message(handler: 2, instance: 0xdead_beef, comm: 9, message: payload), id: 41))
                let send = FrameBuffer(capacity: 8)
                WorkerCodec.append(PipelinedSendFrame(during: 41, comm: 9, payload: view), id: 7, into: send)
                XCTAssertEqual(Array(send.bytes), WorkerCodec.encode(.hostCall(during: 41, call: .pipelinedSend(comm: 9, message: payload)), id: 7))
            }
        }
        let none = FrameBuffer()
        WorkerCodec.append(PipelinedSendFrame(during: 3, comm: 9, payload: nil), id: 8, into: none)
        XCTAssertEqual(Array(none.bytes), WorkerCodec.encode(.hostCall(during: 3, call: .pipelinedSend(comm: 9, message: nil)), id: 8))
        for (status, error) in [(COMMHOST_OK, nil), (COMMHOST_EFAIL, ""), (COMMHOST_EJSON, "not an object")] as [(commhost_status, String?)] {
            let reply = FrameBuffer()
            WorkerCodec.append(MessageReplyFrame(status: status, error: error), id: 12, into: reply)
            XCTAssertEqual(Array(reply.bytes), WorkerCodec.encode(.reply(status: status, error: error, value: 0, bytes: []), id: 12))
        }
    }

    func testHotFramesDecodeInPlaceAsTheGeneralDecoderReadsThem() throws {
        let request = body(WorkerCodec.encode(.message(handler: 2, instance: 5, comm: 9, message: Self.payload), id: 41))
        try request.withUnsafeBytes { raw in
            let decoded = try WorkerCodec.decodeMessageRequest(raw)
            XCTAssertEqual([decoded.id, UInt64(decoded.handler), decoded.instance, decoded.comm], [41, 2, 5, 9])
            XCTAssertEqual(Array(decoded.payload.data), Self.payload.data)
            XCTAssertEqual(Array(decoded.payload.metadata), Self.payload.metadata)
            XCTAssertEqual(decoded.payload.buffers.map { Array(UnsafeBufferPointer(start: $0.ptr, count: $0.len)) }, Self.payload.buffers)
            // Borrowed: the data lies in the frame's own bytes.
            XCTAssertTrue(decoded.payload.data.baseAddress! >= raw.baseAddress! && decoded.payload.data.baseAddress! < raw.baseAddress! + raw.count)
            XCTAssertNil(try WorkerCodec.withPipelinedSend(raw) { (id: $0, during: $1, comm: $2, payload: $3) }, "a message request is not a pipelined send")
        }
        for payload in [Self.payload, nil] {
            let send = body(WorkerCodec.encode(.hostCall(during: 41, call: .pipelinedSend(comm: 9, message: payload)), id: 7))
            try send.withUnsafeBytes { raw in
                let decoded = try XCTUnwrap(try WorkerCodec.withPipelinedSend(raw) { (id: $0, during: $1, comm: $2, payload: $3) })
                XCTAssertEqual([decoded.id, decoded.during, decoded.comm], [7, 41, 9])
                XCTAssertEqual(decoded.payload.map { Array($0.data) }, payload?.data)
            }
        }
        // The reader's fast path takes exactly a reply that ends its call OK
        // with nothing more; every other frame is left to `decode`.
        for sample in Self.samples + [.reply(status: COMMHOST_OK, error: nil, value: 0, bytes: [])] {
            let frame = body(WorkerCodec.encode(sample, id: 12))
            let id = try frame.withUnsafeBytes { try WorkerCodec.decodeOKReply($0) }
            if case .reply(COMMHOST_OK, nil, 0, let bytes) = sample, bytes.isEmpty {
                XCTAssertEqual(id, 12, "\(sample)")
            } else {
                XCTAssertNil(id, "\(sample) is not a bare OK reply")
            }
        }
        // Error text that is not UTF-8 is refused, as the general decoder refuses it.
        var broken = body(WorkerCodec.encode(.reply(status: COMMHOST_EFAIL, error: "ab", value: 0, bytes: []), id: 1))
        broken[18] = 0xc3
        broken[19] = 0x28
        XCTAssertThrowsError(try broken.withUnsafeBytes { try WorkerCodec.decode($0) })
        let other = body(WorkerCodec.encode(.hostCall(during: 41, call: .send(comm: 9, message: Self.payload)), id: 7))
        XCTAssertNil(try other.withUnsafeBytes { try WorkerCodec.withPipelinedSend($0) { (id: $0, during: $1, comm: $2, payload: $3) } }, "an answered send is not a pipelined send")
        // Every truncation, and a byte too many, is refused with a reason.
        for frame in [request, body(WorkerCodec.encode(.hostCall(during: 1, call: .pipelinedSend(comm: 9, message: Self.payload)), id: 2))] {
            for cut in [frame.count + 1] + Array(18..<frame.count) {
                let bytes = cut > frame.count ? frame + [0] : Array(frame[..<cut])
                bytes.withUnsafeBytes { raw in
                    do {
                        if raw.first == WorkerCodec.Kind.message.rawValue {
                            _ = try WorkerCodec.decodeMessageRequest(raw)
                        } else {
                            _ = try WorkerCodec.withPipelinedSend(raw) { (id: $0, during: $1, comm: $2, payload: $3) }
                        }
                        XCTFail("\(bytes.count) of \(frame.count) bytes decoded")
                    } catch {
                        XCTAssertFalse("\(error)".isEmpty)
                    }
                }
            }
        }
    }

    // MARK: The channel

    private func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        addTeardownBlock { close(fds[0]); close(fds[1]) }
        return (fds[0], fds[1])
    }

    func testChannelCarriesWholeFramesLargerThanItsBuffer() throws {
        let (a, b) = socketPair()
        let sender = WorkerChannel(fd: a, maxFrameBytes: 1 << 24), receiver = WorkerChannel(fd: b, maxFrameBytes: 1 << 24)
        let big = WorkerPayload(data: Array("{}".utf8), buffers: [Array(repeating: 0xab, count: 300_000), [1]])
        let messages: [WorkerMessage] = [.deinitialize, .message(handler: 0, instance: 1, comm: 2, message: big), .sessionWritable(session: 4)]
        let thread = Thread { for (i, m) in messages.enumerated() { try? sender.send(m, id: UInt64(i)) } }
        thread.start()
        for (i, expected) in messages.enumerated() {
            let (id, message) = try receiver.receive()
            XCTAssertEqual(id, UInt64(i))
            XCTAssertEqual(message, expected)
        }
    }

    func testHeldFramesOfEachThreadAreWrittenWholeAndInOrderWhenReleased() throws {
        let (a, b) = socketPair()
        let sender = WorkerChannel(fd: a, maxFrameBytes: 1 << 24), receiver = WorkerChannel(fd: b, maxFrameBytes: 1 << 24)
        let threads = (0..<4).map { t in
            Thread {
                sender.hold()
                for i in 0..<200 { try? sender.send(WorkerMessage.task(task: UInt64(t), status: Int32(i)), id: UInt64(t * 1000 + i)) }
                try? sender.release()
                // Not holding any more: written at once.
                try? sender.send(WorkerMessage.sessionWritable(session: UInt64(t)), id: UInt64(t * 1000 + 999))
            }
        }
        threads.forEach { $0.start() }
        var next = [Int](repeating: 0, count: 4)
        for _ in 0..<(4 * 201) {
            let (id, message) = try receiver.receive()
            let t = Int(id / 1000), i = Int(id % 1000)
            if i == 999 {
                XCTAssertEqual(next[t], 200, "thread \(t)'s unheld frame came after all it held")
                XCTAssertEqual(message, .sessionWritable(session: UInt64(t)))
            } else {
                XCTAssertEqual(i, next[t], "thread \(t)'s frames in order")
                XCTAssertEqual(message, .task(task: UInt64(t), status: Int32(i)))
                next[t] += 1
            }
        }
    }

    func testChannelRefusesAFrameLengthOutsideItsBoundAndReportsClose() throws {
        let (a, b) = socketPair()
        let receiver = WorkerChannel(fd: b, maxFrameBytes: 1024)
        for length: UInt32 in [0, 8, 1025, .max] {
            var prefix = (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) }
            XCTAssertEqual(write(a, &prefix, 4), 4)
            XCTAssertThrowsError(try receiver.receive()) { error in
                guard case WorkerChannel.Failure.malformed(let reason) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(reason.contains("\(length)"), reason)
            }
        }
        // Half a frame and then the end of the stream: closed, not a frame.
        let frame = WorkerCodec.encode(.refusal("x"), id: 1)
        XCTAssertEqual(frame.withUnsafeBytes { write(a, $0.baseAddress!, frame.count - 1) }, frame.count - 1)
        shutdown(a, Int32(SHUT_WR))
        XCTAssertThrowsError(try receiver.receive()) { error in
            guard case WorkerChannel.Failure.closed = error else { return XCTFail("\(error)") }
        }
    }

    func testChannelReportsAGarbledBodyAsMalformed() throws {
        let (a, b) = socketPair()
        let receiver = WorkerChannel(fd: b, maxFrameBytes: 1024)
        var frame: [UInt8] = [10, 0, 0, 0, 99] + Array(repeating: 0, count: 9)
        XCTAssertEqual(write(a, &frame, frame.count), frame.count)
        XCTAssertThrowsError(try receiver.receive()) { error in
            guard case WorkerChannel.Failure.malformed(let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("unknown frame kind 99"), reason)
        }
    }
}
