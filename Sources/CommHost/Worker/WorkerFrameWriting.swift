import CommPluginAPI

/// Something that can be written as one worker frame (the layout on
/// `WorkerMessage`): every `WorkerMessage`, and the hot frames written
/// straight from borrowed bytes without building one (`MessageRequestFrame`,
/// `PipelinedSendFrame`). `write` is called twice per frame, once to count
/// its size and once to write it, and must write the same both times.
protocol WorkerFrame {
    func write<Sink: FrameSink>(id: UInt64, to sink: inout Sink)
}

/// Where a frame's fields go. Integers are little-endian; `bytes` and
/// `text` are a `UInt32` length and the raw bytes.
protocol FrameSink {
    mutating func raw(_ bytes: UnsafeRawBufferPointer)
    mutating func integer<T: FixedWidthInteger>(_ value: T)
}

extension FrameSink {
    @inline(__always) mutating func u8(_ v: UInt8) { integer(v) }
    @inline(__always) mutating func u16(_ v: UInt16) { integer(v) }
    @inline(__always) mutating func u32(_ v: UInt32) { integer(v) }
    @inline(__always) mutating func u64(_ v: UInt64) { integer(v) }
    @inline(__always) mutating func i32(_ v: Int32) { integer(UInt32(bitPattern: v)) }
    @inline(__always) mutating func kind(_ k: WorkerCodec.Kind, _ id: UInt64) { u8(k.rawValue); u64(id) }
    mutating func bytes(_ v: UnsafeRawBufferPointer) { u32(UInt32(v.count)); raw(v) }
    mutating func bytes(_ v: [UInt8]) { v.withUnsafeBytes { bytes($0) } }
    mutating func text(_ v: String) {
        var v = v
        v.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }
    mutating func payload(_ p: WorkerPayload) {
        bytes(p.data); bytes(p.metadata); u32(UInt32(p.buffers.count))
        for buffer in p.buffers { bytes(buffer) }
    }
    mutating func payload(_ p: PayloadView) {
        bytes(p.data); bytes(p.metadata); u32(UInt32(p.buffers.count))
        for buffer in p.buffers { bytes(UnsafeRawBufferPointer(start: buffer.ptr, count: buffer.len)) }
    }
    mutating func optionalPayload(_ p: WorkerPayload?) {
        u8(p == nil ? 0 : 1)
        if let p { payload(p) }
    }
    mutating func optionalPayload(_ p: PayloadView?) {
        u8(p == nil ? 0 : 1)
        if let p { payload(p) }
    }
    mutating func comm(_ c: WorkerComm) { u64(c.token); text(c.id); text(c.targetName); u64(c.session); text(c.sessionID) }
}

/// Counts a frame's bytes.
struct SizeCounter: FrameSink {
    var count = 0
    @inline(__always) mutating func raw(_ bytes: UnsafeRawBufferPointer) { count += bytes.count }
    @inline(__always) mutating func integer<T: FixedWidthInteger>(_ value: T) { count += MemoryLayout<T>.size }
}

/// Writes a frame into memory reserved for it (`FrameBuffer.reserve` of
/// what `SizeCounter` counted).
struct RawWriter: FrameSink {
    var cursor: UnsafeMutableRawPointer
    @inline(__always) mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        cursor.copyMemory(from: source, byteCount: bytes.count)
        cursor += bytes.count
    }
    @inline(__always) mutating func integer<T: FixedWidthInteger>(_ value: T) {
        cursor.storeBytes(of: value.littleEndian, as: T.self)
        cursor += MemoryLayout<T>.size
    }
}

/// A message's parts borrowed, not copied: from a plugin's
/// `commhost_message` (to encode it) or from a frame lying in a read buffer
/// (to hand it to a plugin). Valid only as long as what it borrows.
struct PayloadView {
    var data: UnsafeRawBufferPointer
    var metadata: UnsafeRawBufferPointer
    var buffers: [commhost_bytes] = []

    init(data: UnsafeRawBufferPointer, metadata: UnsafeRawBufferPointer, buffers: [commhost_bytes] = []) {
        self.data = data
        self.metadata = metadata
        self.buffers = buffers
    }

    /// The parts of `message`, which the caller has checked (no NULL
    /// pointer with a non-zero length).
    init(_ message: UnsafePointer<commhost_message>) {
        let m = ABIStruct.message(message)
        data = UnsafeRawBufferPointer(start: m.data.ptr, count: m.data.ptr == nil ? 0 : m.data.len)
        metadata = UnsafeRawBufferPointer(start: m.metadata.ptr, count: m.metadata.ptr == nil ? 0 : m.metadata.len)
        if let list = m.buffers, m.buffer_count > 0 {
            buffers = (0..<m.buffer_count).map { list[$0].ptr == nil ? commhost_bytes(ptr: nil, len: 0) : list[$0] }
        }
    }

    /// Calls `body` with a borrowed ABI message of these parts (empty data
    /// or metadata reads `{}`, as `MessageView` gives it).
    func withMessage<R>(_ body: (UnsafePointer<commhost_message>) -> R) -> R {
        buffers.withUnsafeBufferPointer { list in
            MessageView.with(data: data, metadata: metadata, bufferSlices: list, body)
        }
    }
}

/// A pipelined `message` request, written from the host's borrowed message
/// (the same bytes `WorkerMessage.message` would be).
struct MessageRequestFrame: WorkerFrame {
    var handler: UInt32
    var instance: UInt64
    var comm: UInt64
    var payload: PayloadView

    func write<Sink: FrameSink>(id: UInt64, to sink: inout Sink) {
        sink.kind(.message, id); sink.u32(handler); sink.u64(instance); sink.u64(comm); sink.payload(payload)
    }
}

/// A plugin's `send` answered in the worker under a pipelined request,
/// written from the plugin's borrowed message (the same bytes as
/// `WorkerMessage.hostCall(during:call: .pipelinedSend)`).
struct PipelinedSendFrame: WorkerFrame {
    var during: UInt64
    var comm: UInt64
    var payload: PayloadView?

    func write<Sink: FrameSink>(id: UInt64, to sink: inout Sink) {
        sink.kind(.hostCall, id); sink.u64(during)
        sink.u8(WorkerCodec.CallKind.pipelinedSend.rawValue); sink.u64(comm); sink.optionalPayload(payload)
    }
}

/// The reply that ends a pipelined `message` request, written without
/// building a `WorkerMessage` (the same bytes as `WorkerMessage.reply` with
/// no value and no bytes).
struct MessageReplyFrame: WorkerFrame {
    var status: commhost_status
    var error: String?

    func write<Sink: FrameSink>(id: UInt64, to sink: inout Sink) {
        sink.kind(.reply, id); sink.i32(status); sink.u8(error == nil ? 0 : 1)
        if let error { sink.text(error) } else { sink.u32(0) }
        sink.u64(0); sink.u32(0)
    }
}

extension WorkerMessage: WorkerFrame {
    func write<Sink: FrameSink>(id: UInt64, to w: inout Sink) {
        switch self {
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
            w.kind(.hostCall, id); w.u64(during); call.write(to: &w)
        case .hostReply(let status, let value, let text):
            w.kind(.hostReply, id); w.i32(status); w.u64(value); w.text(text)
        }
    }
}

extension WorkerHostCall {
    fileprivate func write<Sink: FrameSink>(to w: inout Sink) {
        typealias CallKind = WorkerCodec.CallKind
        switch self {
        case .log(let level, let text): w.u8(CallKind.log.rawValue); w.i32(level); w.text(text)
        case .send(let comm, let message): w.u8(CallKind.send.rawValue); w.u64(comm); w.optionalPayload(message)
        case .close(let comm, let message): w.u8(CallKind.close.rawValue); w.u64(comm); w.optionalPayload(message)
        case .open(let session, let handler, let target, let commID, let message, let instance, let wantsReference):
            w.u8(CallKind.open.rawValue); w.u64(session); w.text(handler); w.text(target); w.text(commID); w.optionalPayload(message)
            w.u64(instance); w.u8(wantsReference ? 1 : 0)
        case .retainComm(let t): w.u8(CallKind.retainComm.rawValue); w.u64(t)
        case .releaseComm(let t): w.u8(CallKind.releaseComm.rawValue); w.u64(t)
        case .retainSession(let t): w.u8(CallKind.retainSession.rawValue); w.u64(t)
        case .releaseSession(let t): w.u8(CallKind.releaseSession.rawValue); w.u64(t)
        case .schedule(let session, let comm, let delay, let period, let task):
            w.u8(CallKind.schedule.rawValue); w.u64(session); w.u64(comm); w.u64(delay); w.u8(period == nil ? 0 : 1); w.u64(period ?? 0); w.u64(task)
        case .timerCancel(let t): w.u8(CallKind.timerCancel.rawValue); w.u64(t)
        case .pipelinedSend(let comm, let message): w.u8(CallKind.pipelinedSend.rawValue); w.u64(comm); w.optionalPayload(message)
        }
    }
}
