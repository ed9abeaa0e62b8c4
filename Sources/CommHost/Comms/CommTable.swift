/// A session's open comms by comm id: what `[String: Comm]` offers the
/// session, in less memory. A dictionary keeps the id string beside each
/// comm (24 bytes a bucket) and doubles at 3/4 full, so 100 000 comms sat in
/// 262 144 buckets (63 bytes a comm); this table keeps the comm (which knows
/// its id) and 32 bits of the id's hash (12 bytes a bucket) and doubles at
/// 7/8 full (100 000 comms: 131 072 buckets, 16 bytes a comm).
///
/// Ids compare as `String`s (Unicode canonical equivalence, as the
/// dictionary's keys did), hashed with the process's seeded `Hasher`, so a
/// client cannot choose ids that collide. Open addressing with linear
/// probing; removal shifts the entries after the hole back, so no
/// tombstones build up. Not thread-safe: the session keeps it behind a lock.
struct CommTable {
    /// Each bucket's stored hash; 0 marks an empty bucket.
    private var hashes: [UInt32] = []
    /// Each bucket's comm; nil exactly where `hashes` is 0.
    private var buckets: [Comm?] = []
    /// How many comms the table holds.
    private(set) var count = 0

    /// An empty table; it allocates with the first comm.
    init() {}

    /// True when the table holds no comm.
    var isEmpty: Bool { count == 0 }

    /// The comm with id `id`. Setting a comm adds it under its own id (which
    /// must be `id`) or replaces the one there; setting nil removes it.
    subscript(id: String) -> Comm? {
        get {
            guard count > 0, let index = find(id, Self.hash(id)) else { return nil }
            return buckets[index]
        }
        set {
            if let newValue {
                assert(newValue.id == id, "a comm is stored under its own id")
                insert(newValue, id)
            } else {
                _ = removeValue(forKey: id)
            }
        }
    }

    /// Removes and returns the comm with id `id`, if there is one.
    mutating func removeValue(forKey id: String) -> Comm? {
        guard count > 0, let index = find(id, Self.hash(id)) else { return nil }
        let removed = buckets[index]
        removeBucket(at: index)
        return removed
    }

    /// Removes every comm and lets go of the storage.
    mutating func removeAll() {
        hashes = []
        buckets = []
        count = 0
    }

    /// Every comm held, in no particular order.
    var values: [Comm] {
        var all: [Comm] = []
        all.reserveCapacity(count)
        for case let comm? in buckets { all.append(comm) }
        return all
    }

    // MARK: Buckets

    /// 32 bits of `id`'s hash, never 0 (which marks an empty bucket).
    private static func hash(_ id: String) -> UInt32 {
        let full = UInt32(truncatingIfNeeded: id.hashValue)
        return full == 0 ? 1 : full
    }

    private var mask: Int { hashes.count - 1 }

    /// The bucket holding `id`, whose hash is `hash`. Call with `count > 0`.
    private func find(_ id: String, _ hash: UInt32) -> Int? {
        var index = Int(hash) & mask
        while true {
            let stored = hashes[index]
            if stored == 0 { return nil }
            if stored == hash, let comm = buckets[index], comm.id == id { return index }
            index = (index + 1) & mask
        }
    }

    private mutating func insert(_ comm: Comm, _ id: String) {
        let hash = Self.hash(id)
        if count > 0, let index = find(id, hash) {
            buckets[index] = comm
            return
        }
        // Grow before the table passes 7/8 full: a free bucket always ends a probe.
        if (count + 1) * 8 > hashes.count * 7 { resize(to: Swift.max(8, hashes.count * 2)) }
        place(comm, hash)
        count += 1
    }

    /// Puts `comm` in the first empty bucket from its hash's home bucket.
    private mutating func place(_ comm: Comm, _ hash: UInt32) {
        var index = Int(hash) & mask
        while hashes[index] != 0 { index = (index + 1) & mask }
        hashes[index] = hash
        buckets[index] = comm
    }

    private mutating func resize(to capacity: Int) {
        let oldHashes = hashes, oldBuckets = buckets
        hashes = Array(repeating: 0, count: capacity)
        buckets = Array(repeating: nil, count: capacity)
        for index in oldHashes.indices where oldHashes[index] != 0 {
            place(oldBuckets[index]!, oldHashes[index])
        }
    }

    /// Empties the bucket at `index` and moves each later entry of the same
    /// probe run back into the hole when its home bucket allows, so every
    /// entry stays reachable from its home without tombstones.
    private mutating func removeBucket(at index: Int) {
        var hole = index
        var next = index
        while true {
            next = (next + 1) & mask
            let stored = hashes[next]
            if stored == 0 { break }
            let home = Int(stored) & mask
            // The entry may move to the hole when its home is not cyclically inside (hole, next].
            if (next - home) & mask >= (next - hole) & mask {
                hashes[hole] = stored
                buckets[hole] = buckets[next]
                hole = next
            }
        }
        hashes[hole] = 0
        buckets[hole] = nil
        count -= 1
    }
}
