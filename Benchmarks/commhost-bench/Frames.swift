/// The inbound frames the scenarios send: what a widget front end sends
/// while a user drags a slider (`comm_msg` with an `update`), and the
/// `comm_open`s before them.
enum Frames {
    /// `comm_open` for `commID` on `target`, as one line with its newline.
    static func open(commID: String, target: String, msgID: String) -> [UInt8] {
        Array("{\"msg_type\":\"comm_open\",\"header\":{\"msg_id\":\"\(msgID)\",\"msg_type\":\"comm_open\"},\"content\":{\"comm_id\":\"\(commID)\",\"target_name\":\"\(target)\",\"data\":{}},\"metadata\":{}}\n".utf8)
    }

    /// A widget `update` comm_msg of about 150 bytes, with its newline:
    /// `{"method":"update","state":{"value":N},"buffer_paths":[]}`.
    static func update(commID: String, msgID: String, value: Int) -> [UInt8] {
        Array("{\"header\":{\"msg_id\":\"\(msgID)\",\"msg_type\":\"comm_msg\"},\"content\":{\"comm_id\":\"\(commID)\",\"data\":{\"method\":\"update\",\"state\":{\"value\":\(value)},\"buffer_paths\":[]}}}\n".utf8)
    }

    /// A comm_msg carrying one binary buffer (base64 on the wire).
    static func withBuffer(commID: String, msgID: String, base64: [UInt8]) -> [UInt8] {
        var frame = Array("{\"msg_type\":\"comm_msg\",\"header\":{\"msg_id\":\"\(msgID)\",\"msg_type\":\"comm_msg\"},\"content\":{\"comm_id\":\"\(commID)\",\"data\":{\"method\":\"update\",\"state\":{},\"buffer_paths\":[[\"value\"]]}},\"metadata\":{},\"buffers\":[\"".utf8)
        frame += base64
        frame += Array("\"]}\n".utf8)
        return frame
    }

    /// The comm ids the message scenarios spread their messages over.
    static func commIDs(_ count: Int) -> [String] {
        (0..<count).map { "c" + String(1000 + $0) }
    }

    /// `count` update messages round-robin over `comms`, each a line.
    static func updates(count: Int, comms: [String], prefix: String = "m") -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count * 170)
        for i in 0..<count {
            out += update(commID: comms[i % comms.count], msgID: "\(prefix)\(100000 + i)", value: (i * 37) % 1000)
        }
        return out
    }

    /// The opens for `comms` on `target`, each a line.
    static func opens(_ comms: [String], target: String) -> [UInt8] {
        var out: [UInt8] = []
        for (i, id) in comms.enumerated() { out += open(commID: id, target: target, msgID: "o\(i)") }
        return out
    }

    /// The line boundaries of `bytes` (each range excludes its newline).
    static func lineRanges(_ bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            ranges.append(start..<i)
            start = i + 1
        }
        if start < bytes.count { ranges.append(start..<bytes.count) }
        return ranges
    }
}
