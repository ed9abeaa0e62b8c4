import Foundation
import Glibc

/// Writes the generated table into BENCHMARKS.md between two markers,
/// keeping everything around them (the hand-written analysis).
enum ResultsFile {
    static let begin = "<!-- commhost-bench results: begin (generated; everything outside these markers is kept) -->"
    static let end = "<!-- commhost-bench results: end -->"

    struct WriteError: Error, CustomStringConvertible {
        var description: String
    }

    static func write(section: String, to path: String) throws {
        let old = readSmallFile(path) ?? ""
        let block = begin + "\n" + section + end
        var text: String
        if let b = old.range(of: begin), let e = old.range(of: end), b.lowerBound < e.lowerBound {
            text = String(old[..<b.lowerBound]) + block + String(old[e.upperBound...])
        } else if old.isEmpty {
            text = "# commhost benchmarks\n\n" + block + "\n"
        } else {
            text = old + (old.hasSuffix("\n") ? "\n" : "\n\n") + block + "\n"
        }
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteError(description: String(cString: strerror(errno))) }
        let ok = Array(text.utf8).withUnsafeBytes { ChildProcess.writeAll(fd, $0) }
        close(fd)
        guard ok, rename(tmp, path) == 0 else { throw WriteError(description: String(cString: strerror(errno))) }
    }
}
