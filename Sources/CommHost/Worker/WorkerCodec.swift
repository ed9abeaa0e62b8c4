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
        var w = Writer()
        w.u32(0)
        switch message {
        case .hello(let d):
            w.kind(.hello, id)
            w.text(d.name); w.text(d.version); w.u16(d.abiMajor); w.u16(d.abiMinor); w.u32(d.flags); w.u32(d.libraryCallbacks)
            w.u32(UInt32(d.handlers.count))
            for handler in d.handlers { w.text(handler.name); w.u32(handler.callbacks) }
        case .refusal(let reason):
            w.kind(.refusal, id); w.text(reason)
        case .initialize(let config):
            w.kind(.initialize, id); w.bytes(config)
        case .open(let handler, let comm, let message):
            w.kind(.open, id); w.u32(handler); w.comm(comm); w.payload(message)
        case .message(let handler, let instance, let comm, let message):
            w.kind(.message, id); w.u32(handler); w.u64(instance); w.u64(comm); w.payload(message)
        case .close(let handler, let instance, let comm, let message, let cause):
            w.kind(.close, id); w.u32(handler); w.u64(instance); w.u64(comm); w.payload(message); w.i32(cause)
        case .snapshot(let handler, let instance, let comm):
            w.kind(.snapshot, id); w.u32(handler); w.u64(instance); w.u64(comm)
        case .restore(let handler, let comm, let fromVersion, let state):
            w.kind(.restore, id); w.u32(handler); w.comm(comm); w.text(fromVersion); w.bytes(state)
        case .sessionStart(let session, let sessionID, let cause):
            w.kind(.sessionStart, id); w.u64(session); w.text(sessionID); w.i32(cause)
        case .sessionEnd(let session, let cause):
            w.kind(.sessionEnd, id); w.u64(session); w.i32(cause)
        case .sessionWritable(let session):
            w.kind(.sessionWritable, id); w.u64(session)
        case .task(let task, let status):
            w.kind(.task, id); w.u64(task); w.i32(status)
        case .deinitialize:
            w.kind(.deinitialize, id)
        case .sessionBlocked(let session):
            w.kind(.sessionBlocked, id); w.u64(session)
        case .reply(let status, let error, let value, let bytes):
            w.kind(.reply, id); w.i32(status); w.u8(error == nil ? 0 : 1); w.text(error ?? ""); w.u64(value); w.bytes(bytes)
        case .hostCall(let during, let call):
            w.kind(.hostCall, id); w.u64(during); w.call(call)
        case .hostReply(let status, let value, let text):
            w.kind(.hostReply, id); w.i32(status); w.u64(value); w.text(text)
        }
        let length = UInt32(w.bytes.count - 4)
        for i in 0..<4 { w.bytes[i] = UInt8(truncatingIfNeeded: length >> (8 * i)) }
        return w.bytes
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
            let status = try r.i32(), hasError = try r.u8(), error = try r.text()
            message = .reply(status: status, error: hasError == 0 ? nil : error, value: try r.u64(), bytes: try r.bytes())
        case .hostCall: message = .hostCall(during: try r.u64(), call: try r.call())
        case .hostReply: message = .hostReply(status: try r.i32(), value: try r.u64(), text: try r.text())
        }
        guard r.isAtEnd else { throw Malformed(description: "\(r.remaining) bytes left over after a \(kind) frame") }
        return (id, message)
    }

    private enum CallKind: UInt8 {
        case log = 1, send, close, open, retainComm, releaseComm, retainSession, releaseSession, schedule, timerCancel, pipelinedSend
    }

    private struct Writer {
        var bytes: [UInt8] = []
        mutating func u8(_ v: UInt8) { bytes.append(v) }
        mutating func u16(_ v: UInt16) { integer(v) }
        mutating func u32(_ v: UInt32) { integer(v) }
        mutating func u64(_ v: UInt64) { integer(v) }
        /// Little-endian, in one append.
        mutating func integer<T: FixedWidthInteger>(_ v: T) {
            withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
        }
        mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
        mutating func kind(_ k: Kind, _ id: UInt64) { u8(k.rawValue); u64(id) }
        mutating func bytes(_ v: [UInt8]) { u32(UInt32(v.count)); bytes.append(contentsOf: v) }
        mutating func text(_ v: String) { bytes(Array(v.utf8)) }
        mutating func payload(_ p: WorkerPayload) {
            bytes(p.data); bytes(p.metadata); u32(UInt32(p.buffers.count))
            for buffer in p.buffers { bytes(buffer) }
        }
        mutating func optionalPayload(_ p: WorkerPayload?) {
            u8(p == nil ? 0 : 1)
            if let p { payload(p) }
        }
        mutating func comm(_ c: WorkerComm) { u64(c.token); text(c.id); text(c.targetName); u64(c.session); text(c.sessionID) }
        mutating func call(_ call: WorkerHostCall) {
            switch call {
            case .log(let level, let text): u8(CallKind.log.rawValue); i32(level); self.text(text)
            case .send(let comm, let message): u8(CallKind.send.rawValue); u64(comm); optionalPayload(message)
            case .close(let comm, let message): u8(CallKind.close.rawValue); u64(comm); optionalPayload(message)
            case .open(let session, let handler, let target, let commID, let message, let instance, let wantsReference):
                u8(CallKind.open.rawValue); u64(session); text(handler); text(target); text(commID); optionalPayload(message)
                u64(instance); u8(wantsReference ? 1 : 0)
            case .retainComm(let t): u8(CallKind.retainComm.rawValue); u64(t)
            case .releaseComm(let t): u8(CallKind.releaseComm.rawValue); u64(t)
            case .retainSession(let t): u8(CallKind.retainSession.rawValue); u64(t)
            case .releaseSession(let t): u8(CallKind.releaseSession.rawValue); u64(t)
            case .schedule(let session, let comm, let delay, let period, let task):
                u8(CallKind.schedule.rawValue); u64(session); u64(comm); u64(delay); u8(period == nil ? 0 : 1); u64(period ?? 0); u64(task)
            case .timerCancel(let t): u8(CallKind.timerCancel.rawValue); u64(t)
            case .pipelinedSend(let comm, let message): u8(CallKind.pipelinedSend.rawValue); u64(comm); optionalPayload(message)
            }
        }
    }

    private struct Reader {
        let base: UnsafeRawBufferPointer
        var offset = 0
        init(_ base: UnsafeRawBufferPointer) { self.base = base }
        var remaining: Int { base.count - offset }
        var isAtEnd: Bool { offset == base.count }

        mutating func take(_ n: Int) throws(Malformed) -> UnsafeRawBufferPointer {
            guard n >= 0, n <= remaining else { throw Malformed(description: "frame ends \(n - remaining) bytes early at offset \(offset)") }
            defer { offset += n }
            return UnsafeRawBufferPointer(rebasing: base[offset..<(offset + n)])
        }
        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(Malformed) -> T {
            let raw = try take(MemoryLayout<T>.size)
            return T(littleEndian: raw.loadUnaligned(as: T.self))
        }
        mutating func u8() throws(Malformed) -> UInt8 { try integer(UInt8.self) }
        mutating func u16() throws(Malformed) -> UInt16 { try integer(UInt16.self) }
        mutating func u32() throws(Malformed) -> UInt32 { try integer(UInt32.self) }
        mutating func u64() throws(Malformed) -> UInt64 { try integer(UInt64.self) }
        mutating func i32() throws(Malformed) -> Int32 { Int32(bitPattern: try u32()) }
        mutating func bytes() throws(Malformed) -> [UInt8] { Array(try take(Int(try u32()))) }
        mutating func text() throws(Malformed) -> String {
            let raw = try take(Int(try u32()))
            guard let text = String(validating: raw, as: UTF8.self) else { throw Malformed(description: "text at offset \(offset) is not UTF-8") }
            return text
        }
        /// A count of items each at least `minimumEach` bytes long, checked against what is left.
        mutating func count(minimumEach: Int) throws(Malformed) -> Int {
            let n = Int(try u32())
            guard n <= remaining / max(minimumEach, 1) else { throw Malformed(description: "count \(n) cannot fit in \(remaining) bytes") }
            return n
        }
        mutating func payload() throws(Malformed) -> WorkerPayload {
            let data = try bytes(), metadata = try bytes()
            let n = try count(minimumEach: 4)
            var buffers: [[UInt8]] = []
            buffers.reserveCapacity(n)
            for _ in 0..<n { buffers.append(try bytes()) }
            return WorkerPayload(data: data, metadata: metadata, buffers: buffers)
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
