import Glibc

/// A session's open comms by id, keyed by the id's UTF-8 bytes, so an
/// inbound `comm_msg` finds its comm from the raw id bytes of the frame
/// without building a `String`, in less memory than `[String: Comm]`.
///
/// Ids are equal when their UTF-8 bytes are, as the `comm` package compares
/// them (a `String` key would also equate canonically equivalent spellings).
///
/// Layout: a dictionary keeps the id string beside each comm (24 bytes a
/// bucket) and doubles at 3/4 full, so 100 000 comms sat in 262 144
/// buckets (63 bytes a comm); this table keeps the comm (which knows its
/// id) and 32 bits of the id's hash (12 bytes a bucket) and doubles at 7/8
/// full (100 000 comms: 131 072 buckets, 16 bytes a comm). Open addressing
/// with linear probing; removal shifts the entries after the hole back, so
/// no tombstones build up.
///
/// Hashes are a multiply-mix of the id's words with a per-table random
/// seed: a few instructions for the short ids clients use. Should a probe
/// run ever grow long (ids chosen to collide), the table rehashes
/// everything with the standard library's SipHash (`Hasher`) for good.
///
/// Generic over what it holds (the session's ``Comm``s) so tests can fill
/// it without a session. Not thread-safe: the session keeps it behind a lock.
struct CommTable<Comm: AnyObject & Identifiable> where Comm.ID == String {
    /// Each bucket's stored hash; 0 marks an empty bucket.
    private var hashes: [UInt32] = []
    /// Each bucket's comm; nil exactly where `hashes` is 0.
    private var buckets: [Comm?] = []
    /// How many comms the table holds.
    private(set) var count = 0
    private let seed = UInt64.random(in: .min ... .max)
    /// Set once a probe run reached `longRun`: hashes are `Hasher`'s from then on.
    private var flooded = false
    private let longRun: Int

    /// An empty table; it allocates with the first comm. A probe run of
    /// `longRun` switches it to SipHash; tests pass less. At 7/8 full the
    /// longest run of a table of 2^17 buckets is about a thousand for ids
    /// the seed spreads evenly, so the default of 4 096 is all but
    /// impossible without ids chosen to collide.
    init(longRun: Int = 4096) {
        self.longRun = longRun
    }

    /// True when the table holds no comm.
    var isEmpty: Bool { count == 0 }

    /// Whether a long probe run switched the table to SipHash.
    var usesSipHash: Bool { flooded }

    /// The comm with the id whose UTF-8 bytes are `id`.
    subscript(utf8 id: UnsafeRawBufferPointer) -> Comm? {
        guard count > 0, let index = find(id, hash(id)) else { return nil }
        return buckets[index]
    }

    /// The comm with the id whose UTF-8 bytes are `id`, without taking a
    /// reference: for a caller that knows another owner keeps the comm
    /// alive while it uses it (the session's comm_msg path).
    @inline(__always)
    func unretained(utf8 id: UnsafeRawBufferPointer) -> Unmanaged<Comm>? {
        guard count > 0, let index = find(id, hash(id)) else { return nil }
        return buckets.withUnsafeBufferPointer { $0[index].map { Unmanaged.passUnretained($0) } }
    }

    /// The comm with id `id`. Setting a comm adds it under its own id (which
    /// must be `id`) or replaces the one there; setting nil removes it.
    subscript(id: String) -> Comm? {
        get {
            var id = id
            return id.withUTF8 { self[utf8: UnsafeRawBufferPointer($0)] }
        }
        set {
            if let newValue {
                assert(newValue.id == id, "a comm is stored under its own id")
                insert(newValue)
            } else {
                removeValue(forKey: id)
            }
        }
    }

    /// Removes and returns the comm with id `id`, if there is one.
    @discardableResult
    mutating func removeValue(forKey id: String) -> Comm? {
        guard count > 0 else { return nil }
        var id = id
        let found = id.withUTF8 { bytes -> Int? in
            let raw = UnsafeRawBufferPointer(bytes)
            return find(raw, hash(raw))
        }
        guard let index = found else { return nil }
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

    // MARK: Hashing

    /// 32 bits of the hash of the id whose UTF-8 bytes are `bytes`, never 0
    /// (which marks an empty bucket).
    private func hash(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let full: UInt64
        if flooded {
            var hasher = Hasher()
            hasher.combine(bytes: bytes)
            full = UInt64(UInt(bitPattern: hasher.finalize()))
        } else {
            full = Self.mixHash(bytes, seed: seed)
        }
        let folded = UInt32(truncatingIfNeeded: full ^ (full >> 32))
        return folded == 0 ? 1 : folded
    }

    /// Words of the id (the last one overlapping the one before), each
    /// mixed with the seed by a full-width multiply, as wyhash does.
    private static func mixHash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let n = bytes.count
        var h = seed ^ UInt64(n) &* 0x9E37_79B9_7F4A_7C15
        if n >= 8 {
            var i = 0
            while i &+ 8 < n {
                h = mix(h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self), 0xA076_1D64_78BD_642F)
                i &+= 8
            }
            h = mix(h ^ bytes.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self), 0xE703_7ED1_A0B4_28DB)
        } else if n >= 4 {
            // Two overlapping 4-byte loads: on this little-endian target the same word the byte
            // loop below builds, in two loads instead of n (the ids of 4 to 7 bytes).
            let low = UInt64(bytes.loadUnaligned(as: UInt32.self))
            let high = UInt64(bytes.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self))
            h = mix(h ^ (low | high << UInt64(8 &* (n &- 4))), 0xE703_7ED1_A0B4_28DB)
        } else if n > 0 {
            var word: UInt64 = 0
            for i in 0..<n { word |= UInt64(bytes[i]) << UInt64(i &* 8) }
            h = mix(h ^ word, 0xE703_7ED1_A0B4_28DB)
        }
        return mix(h, 0x8EBC_6AF0_9C88_C6E3)
    }

    @inline(__always)
    private static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    private static func id(of comm: Comm, equals bytes: UnsafeRawBufferPointer) -> Bool {
        let equal = comm.id.utf8.withContiguousStorageIfAvailable { own in
            own.count == bytes.count && (own.count == 0 || memcmp(own.baseAddress!, bytes.baseAddress!, own.count) == 0)
        }
        return equal ?? comm.id.utf8.elementsEqual(bytes)
    }

    private func hash(of comm: Comm) -> UInt32 {
        var id = comm.id
        return id.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    // MARK: Buckets

    private var mask: Int { hashes.count &- 1 }

    /// The bucket holding the id `bytes`, whose hash is `hash`. Call with `count > 0`.
    private func find(_ bytes: UnsafeRawBufferPointer, _ hash: UInt32) -> Int? {
        var index = Int(hash) & mask
        while true {
            let stored = hashes[index]
            if stored == 0 { return nil }
            if stored == hash, let comm = buckets[index], Self.id(of: comm, equals: bytes) { return index }
            index = (index &+ 1) & mask
        }
    }

    private mutating func insert(_ comm: Comm) {
        let hash = hash(of: comm)
        if count > 0 {
            var id = comm.id
            if let index = id.withUTF8({ find(UnsafeRawBufferPointer($0), hash) }) {
                buckets[index] = comm
                return
            }
        }
        // Grow before the table passes 7/8 full: a free bucket always ends a probe.
        if (count &+ 1) * 8 > hashes.count * 7 { resize(to: Swift.max(8, hashes.count * 2)) }
        count &+= 1
        if !place(comm, hash), !flooded {
            flooded = true
            resize(to: hashes.count)
        }
    }

    /// Puts `comm` in the first empty bucket from its hash's home bucket;
    /// false when the probe run it took was long.
    @discardableResult
    private mutating func place(_ comm: Comm, _ hash: UInt32) -> Bool {
        var index = Int(hash) & mask
        var run = 0
        while hashes[index] != 0 {
            index = (index &+ 1) & mask
            run &+= 1
        }
        hashes[index] = hash
        buckets[index] = comm
        return run < longRun
    }

    /// Puts every comm into `capacity` fresh buckets (hashed again when the
    /// table has switched to SipHash).
    private mutating func resize(to capacity: Int) {
        let oldHashes = hashes, oldBuckets = buckets
        hashes = Array(repeating: 0, count: capacity)
        buckets = Array(repeating: nil, count: capacity)
        for index in oldHashes.indices where oldHashes[index] != 0 {
            let comm = oldBuckets[index]!
            place(comm, flooded ? hash(of: comm) : oldHashes[index])
        }
    }

    /// Empties the bucket at `index` and moves each later entry of the same
    /// probe run back into the hole when its home bucket allows, so every
    /// entry stays reachable from its home without tombstones.
    private mutating func removeBucket(at index: Int) {
        var hole = index
        var next = index
        while true {
            next = (next &+ 1) & mask
            let stored = hashes[next]
            if stored == 0 { break }
            let home = Int(stored) & mask
            // The entry may move to the hole when its home is not cyclically inside (hole, next].
            if (next &- home) & mask >= (next &- hole) & mask {
                hashes[hole] = stored
                buckets[hole] = buckets[next]
                hole = next
            }
        }
        hashes[hole] = 0
        buckets[hole] = nil
        count &-= 1
    }
}
