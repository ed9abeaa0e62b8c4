import CommPluginKit

/// Counter: the Swift example plugin. Handler `counter` keeps one integer
/// per comm, starting at the comm_open's `data.value` (0 when absent).
///
/// - `{"method":"increment","by":N}` adds the integer N and sends
///   `{"method":"update","state":{"value":V}}`.
/// - `{"method":"request_state"}` sends the same update.
/// - Anything else gets `{"method":"error","message":"..."}` saying what was
///   not understood.
///
/// It hands off its value on reload, so a counter keeps counting across a
/// rebuild of this library: restore reads its own `State` from whatever
/// version saved it (SurvivesReload's default decodeState), and state it
/// cannot read closes that comm while the reload goes on. It keeps nothing
/// per library or per session, so it exports no CommLibrary type.
final class Counter: SurvivesReload {
    static let handlerName = "counter"

    /// What survives a reload.
    struct State: Codable, Equatable {
        var value: Int
    }

    private let comm: Comm
    private var value: Int

    var state: State { State(value: value) }

    init(comm: Comm, open message: CommMessage) throws {
        self.comm = comm
        self.value = try message.decode(OpenData.self).value ?? 0
    }

    init(comm: Comm, restoring state: State) {
        self.comm = comm
        self.value = state.value
    }

    func receive(_ message: CommMessage) throws {
        guard let request = try? message.decode(Request.self) else {
            return try reject("the message data is not a JSON object")
        }
        switch request.method {
        case "increment":
            switch request.by {
            case .integer(let by):
                let (sum, overflow) = value.addingReportingOverflow(by)
                guard !overflow else {
                    return try reject("increment by \(by) would take the counter past the integer range (now \(value))")
                }
                value = sum
                try sendUpdate()
            case .missing:
                try reject("increment needs an integer \"by\"; it is missing")
            case .notInteger(let what):
                try reject("increment needs an integer \"by\"; got \(what)")
            }
        case "request_state":
            try sendUpdate()
        case let method?:
            try reject("counter does not understand method \"\(method)\"; it knows \"increment\" and \"request_state\"")
        case nil:
            try reject("the message has no \"method\" string; counter knows \"increment\" and \"request_state\"")
        }
    }

    private func sendUpdate() throws {
        try comm.send(json: Update(state: state))
    }

    private func reject(_ message: String) throws {
        try comm.send(json: ErrorReply(message: message))
    }
}

/// The comm_open data counter reads.
private struct OpenData: Decodable {
    var value: Int?
}

/// `{"method":"update","state":{"value":V}}`.
private struct Update: Encodable {
    let method = "update"
    var state: Counter.State
}

/// `{"method":"error","message":"..."}`.
private struct ErrorReply: Encodable {
    let method = "error"
    var message: String
}

/// A comm_msg to counter, read leniently so that every mistake can be
/// answered with a message rather than a failure.
private struct Request: Decodable {
    /// What `by` held.
    enum Amount {
        case missing
        case integer(Int)
        /// Not an integer; says what it was instead.
        case notInteger(String)
    }

    var method: String?
    var by: Amount

    private enum Keys: String, CodingKey {
        case method, by
    }

    init(from decoder: any Decoder) throws {
        let object = try decoder.container(keyedBy: Keys.self)
        method = try? object.decode(String.self, forKey: .method)
        if !object.contains(.by) {
            by = .missing
        } else if let integer = try? object.decode(Int.self, forKey: .by) {
            by = .integer(integer)
        } else if let number = try? object.decode(Double.self, forKey: .by) {
            by = .notInteger("the number \(number)")
        } else if let text = try? object.decode(String.self, forKey: .by) {
            by = .notInteger("the string \"\(text)\"")
        } else if let flag = try? object.decode(Bool.self, forKey: .by) {
            by = .notInteger("\(flag)")
        } else if (try? object.decodeNil(forKey: .by)) == true {
            by = .notInteger("null")
        } else {
            by = .notInteger("an array or object")
        }
    }
}

/// The library's entry: the descriptor listing the counter handler.
@c(commhost_plugin_entry)
public func commhostPluginEntry() -> UnsafeRawPointer? {
    PluginExport.descriptor(name: "counter", version: "1.0.0", handlers: [Counter.self])
}
