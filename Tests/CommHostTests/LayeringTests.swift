import Foundation
import XCTest

/// Issue 15 item 5: data flows one way between the folders of `CommHost`.
/// The table "Which folder may use which" in docs/ARCHITECTURE.md is the
/// rule; these tests read it from there, so the map and the check cannot
/// drift apart.
final class LayeringTests: XCTestCase {
    func testEveryFolderUsesOnlyTheFoldersTheArchitectureMapAllows() throws {
        let rules = try Layering.rules(fromArchitectureMap: String(contentsOfFile: TestSupport.repoRoot + "/docs/ARCHITECTURE.md", encoding: .utf8))
        let sources = try Layering.sources(under: TestSupport.repoRoot + "/Sources/CommHost")
        XCTAssertEqual(Set(rules.keys), Set(sources.keys), "the map's table names exactly the folders of Sources/CommHost")
        let check = Layering.check(sources, rules: rules)
        // The check sees the host's main types where they are declared, so a
        // rule it cannot apply does not pass unnoticed.
        for (type, folder) in ["Session": "Comms", "PluginLibrary": "Plugins", "Manifest": "Manifest", "FrameParser": "Wire",
                               "Reloader": "Reload", "WorkerProcess": "Worker", "StreamTransport": "Transport", "Logger": "Support"] {
            XCTAssertEqual(check.owners[type], folder, "\(type) is declared in \(folder)/")
        }
        XCTAssertEqual(check.violations, [], "uses against the flow:\n" + check.violations.joined(separator: "\n"))
    }

    func testTheCheckReportsAUseAgainstTheFlowWithItsFileAndName() {
        let rules = ["Comms": Set(["Support"]), "Support": Set<String>()]
        let sources = [
            "Comms": ["Comms/Session.swift": "final class Session {\n    let log = Logger()\n}\n"],
            "Support": ["Support/Logger.swift": "struct Logger {\n    // a Session in a comment is no use\n    var name = \"Session\"\n    var owner: Session?\n}\n"],
        ]
        let check = Layering.check(sources, rules: rules)
        XCTAssertEqual(check.violations, ["Support/Logger.swift uses Session (Comms/), which Support/ may not use"])
    }
}

/// The layering check: top-level declarations give each type its folder;
/// every identifier a file uses that names a type of another folder must be
/// one of the folders its own folder may use.
enum Layering {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The table under "## Which folder may use which": `| \`Host/\` | \`Comms/\`, … |`,
    /// "nothing" for none.
    static func rules(fromArchitectureMap text: String) throws -> [String: Set<String>] {
        guard let start = text.range(of: "\n## Which folder may use which\n") else {
            throw Problem(description: "docs/ARCHITECTURE.md has no section \"## Which folder may use which\"")
        }
        var rules: [String: Set<String>] = [:]
        for line in text[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") { break }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard line.hasPrefix("|"), cells.count == 2, cells[0].hasPrefix("`") else { continue }
            rules[folderName(cells[0])] = Set(cells[1] == "nothing" ? [] : cells[1].split(separator: ",").map { folderName(String($0)) })
        }
        guard !rules.isEmpty else { throw Problem(description: "the section \"Which folder may use which\" has no table rows") }
        return rules
    }

    private static func folderName(_ cell: String) -> String {
        cell.trimmingCharacters(in: CharacterSet(charactersIn: " `/"))
    }

    /// Every Swift file below `root`, by top folder, as text keyed by its path from `root`.
    static func sources(under root: String) throws -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        guard let walk = FileManager.default.enumerator(atPath: root) else { throw Problem(description: "cannot list \(root)") }
        for case let path as String in walk where path.hasSuffix(".swift") {
            let folder = String(path.split(separator: "/")[0])
            result[folder, default: [:]][path] = try String(contentsOfFile: root + "/" + path, encoding: .utf8)
        }
        return result
    }

    /// Who declares what, and every use against the rules.
    static func check(_ sources: [String: [String: String]], rules: [String: Set<String>]) -> (owners: [String: String], violations: [String]) {
        let code = sources.mapValues { $0.mapValues(strippingCommentsAndStrings) }
        var owners: [String: String] = [:]
        var declaredTwice: Set<String> = []
        for (folder, files) in code {
            for text in files.values {
                for name in topLevelDeclarations(text) {
                    if let other = owners[name], other != folder { declaredTwice.insert(name) }
                    owners[name] = folder
                }
            }
        }
        for name in declaredTwice { owners[name] = nil }
        var violations: [String] = []
        for (folder, files) in code {
            let allowed = rules[folder] ?? []
            for (path, text) in files.sorted(by: { $0.key < $1.key }) {
                for name in Set(identifiers(text)).sorted() {
                    guard let owner = owners[name], owner != folder, !allowed.contains(owner) else { continue }
                    violations.append("\(path) uses \(name) (\(owner)/), which \(folder)/ may not use")
                }
            }
        }
        return (owners, violations.sorted())
    }

    /// Names declared at the top level of a file (not nested, not private).
    static func topLevelDeclarations(_ text: String) -> [String] {
        let kinds: Set<Substring> = ["class", "struct", "enum", "protocol", "typealias", "actor", "func"]
        let modifiers: Set<Substring> = ["public", "internal", "package", "final", "open", "indirect", "nonisolated"]
        var names: [String] = []
        for line in text.split(separator: "\n") where !(line.first?.isWhitespace ?? true) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == ":" || $0 == "<" || $0 == "{" })
            var index = 0
            while index < words.count, words[index].hasPrefix("@") || modifiers.contains(words[index]) { index += 1 }
            guard index + 1 < words.count, kinds.contains(words[index]) else { continue }
            names.append(String(words[index + 1]))
        }
        return names
    }

    static func identifiers(_ text: String) -> [String] {
        text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).filter { $0.first?.isLetter ?? false }.map(String.init)
    }

    /// `text` without comments and without the contents of string literals
    /// (a type named in prose or in a message is not a use).
    static func strippingCommentsAndStrings(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        func at(_ offset: Int, _ s: String) -> Bool {
            let needle = Array(s.utf8)
            return offset + needle.count <= bytes.count && Array(bytes[offset..<offset + needle.count]) == needle
        }
        while i < bytes.count {
            if at(i, "//") {
                while i < bytes.count && bytes[i] != 0x0A { i += 1 }
            } else if at(i, "/*") {
                i += 2
                while i < bytes.count && !at(i, "*/") { i += 1 }
                i += 2
            } else if at(i, "\"\"\"") {
                i += 3
                while i < bytes.count && !at(i, "\"\"\"") { i += 1 }
                i += 3
                out += Array("\"\"".utf8)
            } else if bytes[i] == 0x22 {
                i += 1
                while i < bytes.count && bytes[i] != 0x22 && bytes[i] != 0x0A {
                    i += bytes[i] == 0x5C ? 2 : 1
                }
                i += 1
                out += Array("\"\"".utf8)
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
