import Foundation

/// Reads the one JSON object the Python peer prints.
struct PeerOutput {
    private let object: [String: Any]

    init(_ text: String) throws {
        guard let line = text.split(separator: "\n").last,
              let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ScenarioFailure("the Python peer printed no JSON object: \(text.prefix(200))")
        }
        object = parsed
    }

    func number(_ key: String) throws -> Double {
        guard let value = object[key] as? NSNumber else { throw ScenarioFailure("the Python peer's output has no number \"\(key)\"") }
        return value.doubleValue
    }
}

/// A scenario that ran but went wrong (lost replies, a peer that failed).
struct ScenarioFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
