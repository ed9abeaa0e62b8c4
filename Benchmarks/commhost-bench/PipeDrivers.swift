import Dispatch
import Glibc

/// The client both stdio contenders (commhost serve and the line-echo
/// process) are driven by: the same bytes through the same kind of pipes.
enum PipeDrivers {
    /// Writes `payload` (holding `count` frames) from another thread while
    /// this one reads `count` reply lines; returns messages per second.
    static func pipelined(input: Int32, reader: LineReader, payload: [UInt8], count: Int) throws -> Double {
        let group = DispatchGroup()
        let t0 = Clock.nanos()
        DispatchQueue.global().async(group: group) {
            // Chunks of 64 KiB: what a client writing frames as it makes them does.
            payload.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = min(1 << 16, raw.count - offset)
                    guard ChildProcess.writeAll(input, UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n)])) else { return }
                    offset += n
                }
            }
        }
        let ok = reader.skipLines(count)
        let seconds = Clock.seconds(since: t0)
        group.wait()
        guard ok else { throw ScenarioFailure("the process stopped answering before \(count) replies") }
        return Double(count) / seconds
    }

    /// Sends one frame at a time and waits for its reply line; returns each
    /// round trip in microseconds.
    static func pingPong(input: Int32, reader: LineReader, frames: [[UInt8]], count: Int) throws -> Samples {
        var rtts = Samples()
        for i in 0..<count {
            let frame = frames[i % frames.count]
            let t0 = Clock.nanos()
            guard frame.withUnsafeBytes({ ChildProcess.writeAll(input, $0) }), reader.skipLines(1) else {
                throw ScenarioFailure("the process stopped answering after \(i) round trips")
            }
            rtts.append(Double(Clock.nanos() - t0) / 1000)
        }
        return rtts
    }
}
