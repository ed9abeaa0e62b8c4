/// Every problem found in one manifest, in the order of the file (problems
/// with no line first). Never empty when thrown or returned as a failure.
public struct ManifestProblems: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problems, one per thing to fix.
    public var problems: [ManifestProblem]

    /// Wraps `problems`.
    public init(problems: [ManifestProblem]) {
        self.problems = problems
    }

    /// One problem per line.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
