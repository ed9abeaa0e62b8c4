/// The member names seen so far in one object whose names must not repeat, for the members
/// the frame parser does not itself recognise (known members are tracked by flag).
///
/// The first eight names are kept inline and compared pairwise, so an ordinary frame allocates
/// nothing; past eight, the names move to a hashed set so a frame with many members costs
/// linear time, not quadratic.
struct MemberNames {
    private var inline: InlineArray<8, StringToken> = .init(repeating: StringToken(start: 0, end: 0, hasEscapes: false))
    private var inlineCount = 0
    private var overflow: Set<[UInt8]>? = nil

    /// Records `name`; returns false if an equal name was recorded before.
    mutating func insert(_ name: StringToken, scanner: borrowing JSONScanner) -> Bool {
        if overflow != nil {
            return overflow!.insert(scanner.decodedBytes(name)).inserted
        }
        var i = 0
        while i < inlineCount {
            if scanner.tokensEqual(inline[i], name) { return false }
            i += 1
        }
        if inlineCount < 8 {
            inline[inlineCount] = name
            inlineCount += 1
            return true
        }
        var set = Set<[UInt8]>(minimumCapacity: 32)
        for j in 0..<inlineCount { set.insert(scanner.decodedBytes(inline[j])) }
        set.insert(scanner.decodedBytes(name))
        overflow = set
        return true
    }
}
