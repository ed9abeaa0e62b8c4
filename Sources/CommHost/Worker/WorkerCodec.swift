import CommPluginAPI

/// Encodes and decodes `WorkerMessage` frames (the layout is described on
/// `WorkerMessage`). Decoding checks every length against what is left, so
/// a truncated or garbled frame is an error, never an out-of-bounds read.
enum WorkerCodec {
    /// Why a frame could not be decoded.
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// The kind byte of each message.
    enum Kind: UInt8 {
        case hello = 1, refusal, initialize, open, message, close, snapshot, restore, sessionStart, sessionEnd,
             sessionWritable, task, deinitialize, reply, hostCall, hostReply, sessionBlocked
    }

    /// The frame for `message` with request id `id`, length prefix included.
    static func encode(_ message: WorkerMessage, id: UInt64) -> [UInt8] {
        let buffer = FrameBuffer(capacity: 256)
        append(message, id: id, into: buffer)
        return Array(buffer.bytes)
    }

    /// Appends the frame for `frame` with request id `id`, length prefix
    /// included, to `buffer`: its size is counted first, then every field is
    /// written in place, so a frame costs no allocation of its own.
    static func append(_ frame: some WorkerFrame, id: UInt64, into buffer: FrameBuffer) {
        var counter = SizeCounter()
        frame.write(id: id, to: &counter)
        let start = buffer.reserve(4 + counter.count)
        var writer = RawWriter(cursor: start)
        writer.u32(UInt32(counter.count))
        frame.write(id: id, to: &writer)
        buffer.commit(4 + counter.count)
    }

    /// Decodes one frame's body (what follows the length prefix).
    static func decode(_ body: UnsafeRawBufferPointer) throws(Malformed) -> (id: UInt64, message: WorkerMessage) {
        var r = Reader(body)
        let rawKind = try r.u8()
        guard let kind = Kind(rawValue: rawKind) else { throw Malformed(description: "unknown frame kind \(rawKind)") }
        let id = try r.u64()
        let message: WorkerMessage
        switch kind {
        case .hello:
            let name = try r.text(), version = try r.text(), major = try r.u16(), minor = try r.u16(), flags = try r.u32()
            let callbacks = try r.u32()
            let count = try r.count(minimumEach: 8)
            var handlers: [WorkerHandler] = []
            for _ in 0..<count { handlers.append(WorkerHandler(name: try r.text(), callbacks: try r.u32())) }
            message = .hello(WorkerDescriptor(name: name, version: version, abiMajor: major, abiMinor: minor, flags: flags,
                                              libraryCallbacks: callbacks, handlers: handlers))
        case .refusal: message = .refusal(try r.text())
        case .initialize: message = .initialize(config: try r.bytes())
        case .open: message = .open(handler: try r.u32(), comm: try r.comm(), message: try r.payload())
        case .message: message = .message(handler: try r.u32(), instance: try r.u64(), comm: try r.u64(), message: try r.payload())
        case .close:
            message = .close(handler: try r.u32(), instance: try r.u64(), comm: try r.u64(), message: try r.payload(), cause: try r.i32())
        case .snapshot: message = .snapshot(handler: try r.u32(), instance: try r.u64(), comm: try r.u64())
        case .restore: message = .restore(handler: try r.u32(), comm: try r.comm(), fromVersion: try r.text(), state: try r.bytes())
        case .sessionStart: message = .sessionStart(session: try r.u64(), sessionID: try r.text(), cause: try r.i32())
        case .sessionEnd: message = .sessionEnd(session: try r.u64(), cause: try r.i32())
        case .sessionWritable: message = .sessionWritable(session: try r.u64())
        case .task: message = .task(task: try r.u64(), status: try r.i32())
        case .deinitialize: message = .deinitialize
        case .sessionBlocked: message = .sessionBlocked(session: try r.u64())
        case .reply:
            let reply = try r.reply()
            message = .reply(status: reply.status, error: reply.error, value: reply.value, bytes: Array(reply.bytes))
        case .hostCall: message = .hostCall(during: try r.u64(), call: try r.call())
        case .hostReply: message = .hostReply(status: try r.i32(), value: try r.u64(), text: try r.text())
        }
        guard r.isAtEnd else { throw Malformed(description: "\(r.remaining) bytes left over after a \(kind) frame") }
        return (id, message)
    }

    /// Decodes a `message` request's body (the frame's kind is `message`)
    /// without copying: the payload borrows `body`.
    static func decodeMessageRequest(_ body: UnsafeRawBufferPointer) throws(Malformed)
        -> (id: UInt64, handler: UInt32, instance: UInt64, comm: UInt64, payload: PayloadView) {
        var r = Reader(body)
        guard try r.u8() == Kind.message.rawValue else { throw Malformed(description: "not a message request") }
        let id = try r.u64(), handler = try r.u32(), instance = try r.u64(), comm = try r.u64(), payload = try r.payloadView()
        guard r.isAtEnd else { throw Malformed(description: "\(r.remaining) bytes left over after a message frame") }
        return (id, handler, instance, comm, payload)
    }

    /// Decodes a `hostCall` carrying a `pipelinedSend` without copying (the
    /// payload borrows `body`) and hands its fields to `use`; nil (`use` not
    /// called) when the body is any other frame. The fields are handed on
    /// rather than returned: on the reader's hot path a returned optional
    /// tuple holding the payload was dropped through a generic value-witness call.
    @inline(__always)
    static func withPipelinedSend<R>(_ body: UnsafeRawBufferPointer,
                                     _ use: (_ id: UInt64, _ during: UInt64, _ comm: UInt64, _ payload: PayloadView?) -> R)
        throws(Malformed) -> R? {
        guard body.count > 17, body[0] == Kind.hostCall.rawValue, body[17] == CallKind.pipelinedSend.rawValue else { return nil }
        var r = Reader(body)
        _ = try r.u8()
        let id = try r.u64(), during = try r.u64()
        _ = try r.u8()
        let comm = try r.u64()
        let payload = try r.u8() == 0 ? nil : try r.payloadView()
        guard r.isAtEnd else { throw Malformed(description: "\(r.remaining) bytes left over after a hostCall frame") }
        return use(id, during, comm, payload)
    }

    /// The id of a `reply` that ends its call `COMMHOST_OK` with no error
    /// text, no value and no bytes (what a pipelined comm_msg's reply
    /// usually is), checked as `decode` checks it, without building
    /// anything; nil for any other frame, which `decode` reads.
    static func decodeOKReply(_ body: UnsafeRawBufferPointer) throws(Malformed) -> UInt64? {
        guard body.first == Kind.reply.rawValue else { return nil }
        var r = Reader(body)
        _ = try r.u8()
        let id = try r.u64(), status = try r.i32(), hasError = try r.u8(), errorBytes = try r.bytesView()
        let value = try r.u64(), bytes = try r.bytesView()
        guard status == COMMHOST_OK, hasError == 0, errorBytes.isEmpty, value == 0, bytes.isEmpty, r.isAtEnd else { return nil }
        return id
    }

    enum CallKind: UInt8 {
        case log = 1, send, close, open, retainComm, releaseComm, retainSession, releaseSession, schedule, timerCancel, pipelinedSend
    }

    private struct Reader {
        let base: UnsafeRawBufferPointer
        var offset = 0
        init(_ base: UnsafeRawBufferPointer) { self.base = base }
        var remaining: Int { base.count - offset }
        var isAtEnd: Bool { offset == base.count }

        /// The error for `n` bytes wanted where fewer are left (out of line:
        /// the reads that may throw it are inlined).
        @inline(never)
        func endsEarly(_ n: Int) -> Malformed {
            Malformed(description: "frame ends \(n - remaining) bytes early at offset \(offset)")
        }
        @inline(__always)
        mutating func take(_ n: Int) throws(Malformed) -> UnsafeRawBufferPointer {
            guard n >= 0, n <= remaining else { throw endsEarly(n) }
            defer { offset += n }
            return UnsafeRawBufferPointer(start: base.baseAddress.map { $0 + offset }, count: n)
        }
        @inline(__always)
        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(Malformed) -> T {
            let size = MemoryLayout<T>.size
            guard size <= remaining else { throw endsEarly(size) }
            defer { offset += size }
            return T(littleEndian: base.baseAddress!.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        // The hot frames' fields are read inline: a call per field cost
        // more than the read (callgrind).
        @inline(__always) mutating func u8() throws(Malformed) -> UInt8 { try integer(UInt8.self) }
        @inline(__always) mutating func u16() throws(Malformed) -> UInt16 { try integer(UInt16.self) }
        @inline(__always) mutating func u32() throws(Malformed) -> UInt32 { try integer(UInt32.self) }
        @inline(__always) mutating func u64() throws(Malformed) -> UInt64 { try integer(UInt64.self) }
        @inline(__always) mutating func i32() throws(Malformed) -> Int32 { Int32(bitPattern: try u32()) }
        mutating func bytes() throws(Malformed) -> [UInt8] { Array(try take(Int(try u32()))) }
        /// Borrowed: valid as long as the frame's bytes.
        @inline(__always) mutating func bytesView() throws(Malformed) -> UnsafeRawBufferPointer { try take(Int(try u32())) }
        mutating func text() throws(Malformed) -> String {
            let raw = try take(Int(try u32()))
            guard let text = String(validating: raw, as: UTF8.self) else { throw Malformed(description: "text at offset \(offset) is not UTF-8") }
            return text
        }
        /// A count of items each at least `minimumEach` bytes long, checked against what is left.
        @inline(__always)
        mutating func count(minimumEach: Int) throws(Malformed) -> Int {
            let n = Int(try u32())
            guard n <= remaining / max(minimumEach, 1) else { throw cannotFit(n) }
            return n
        }
        @inline(never)
        func cannotFit(_ n: Int) -> Malformed { Malformed(description: "count \(n) cannot fit in \(remaining) bytes") }
        /// ``payloadView()``, copied out.
        mutating func payload() throws(Malformed) -> WorkerPayload {
            let view = try payloadView()
            return WorkerPayload(data: Array(view.data), metadata: Array(view.metadata),
                                 buffers: view.buffers.map { Array(UnsafeBufferPointer(start: $0.ptr, count: $0.len)) })
        }
        /// A reply's fields after its id: the error text made only when the
        /// frame carries one (text there is checked as `text()` checks it);
        /// the bytes borrow the frame.
        mutating func reply() throws(Malformed) -> (status: Int32, error: String?, value: UInt64, bytes: UnsafeRawBufferPointer) {
            let status = try i32(), hasError = try u8(), errorBytes = try bytesView()
            var error: String?
            if hasError != 0 || !errorBytes.isEmpty {
                guard let text = String(validating: errorBytes, as: UTF8.self) else {
                    throw Malformed(description: "text at offset \(offset) is not UTF-8")
                }
                if hasError != 0 { error = text }
            }
            return (status, error, try u64(), try bytesView())
        }
        @inline(__always)
        mutating func payloadView() throws(Malformed) -> PayloadView {
            let data = try bytesView(), metadata = try bytesView()
            let n = try count(minimumEach: 4)
            var buffers: [commhost_bytes] = []
            if n > 0 {
                buffers.reserveCapacity(n)
                for _ in 0..<n {
                    let bytes = try bytesView()
                    buffers.append(commhost_bytes(ptr: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), len: bytes.count))
                }
            }
            return PayloadView(data: data, metadata: metadata, buffers: buffers)
        }
        mutating func optionalPayload() throws(Malformed) -> WorkerPayload? {
            try u8() == 0 ? nil : try payload()
        }
        mutating func comm() throws(Malformed) -> WorkerComm {
            WorkerComm(token: try u64(), id: try text(), targetName: try text(), session: try u64(), sessionID: try text())
        }
        mutating func call() throws(Malformed) -> WorkerHostCall {
            let raw = try u8()
            guard let kind = CallKind(rawValue: raw) else { throw Malformed(description: "unknown host call \(raw)") }
            switch kind {
            case .log: return .log(level: try i32(), text: try text())
            case .send: return .send(comm: try u64(), message: try optionalPayload())
            case .close: return .close(comm: try u64(), message: try optionalPayload())
            case .open:
                return .open(session: try u64(), handler: try text(), target: try text(), commID: try text(), message: try optionalPayload(),
                             instance: try u64(), wantsReference: try u8() != 0)
            case .retainComm: return .retainComm(try u64())
            case .releaseComm: return .releaseComm(try u64())
            case .retainSession: return .retainSession(try u64())
            case .releaseSession: return .releaseSession(try u64())
            case .schedule:
                let session = try u64(), comm = try u64(), delay = try u64(), hasPeriod = try u8(), period = try u64()
                return .schedule(session: session, comm: comm, delayMilliseconds: delay, periodMilliseconds: hasPeriod == 0 ? nil : period, task: try u64())
            case .timerCancel: return .timerCancel(try u64())
            case .pipelinedSend: return .pipelinedSend(comm: try u64(), message: try optionalPayload())
            }
        }
    }
}
