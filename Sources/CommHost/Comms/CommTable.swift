import Glibc

/// A session's open comms by id, keyed by the id's UTF-8 bytes, so an inbound `comm_msg` finds
/// its comm from the raw id bytes of the frame without building a `String`.
///
/// Ids are equal when their UTF-8 bytes are (as the `comm` package compares them; a `String`
/// key would also equate canonically equivalent spellings). Open addressing with linear probing
/// over a power-of-two array, at most half full, emptied slots closed up by shifting
/// later entries back, so lookups never walk tombstones.
///
/// Hashes are a multiply-mix of the id's words with a per-table random seed: a few instructions
/// for the short ids clients use. Should a probe run ever grow long (ids chosen to collide), the
/// table rehashes everything with the standard library's SipHash (`Hasher`) for good.
///
/// Generic over what it holds (the session's ``Comm``s) so tests can fill it without a session.
struct CommTable<Comm: AnyObject & Identifiable> where Comm.ID == String {
    private struct Slot {
        var hash: UInt64
        var comm: Comm?
    }

    /// Empty until the first insert; otherwise a power of two long.
    private var slots: [Slot] = []
    /// Number of open comms.
    private(set) var count = 0
    private let seed = UInt64.random(in: .min ... .max)
    /// Set once a probe run reached `longRun`: hashes are `Hasher`'s from then on.
    private var flooded = false
    private let longRun: Int

    /// An empty table. A probe run of `longRun` (128 is all but impossible in a half-full table
    /// of ids the seed spreads evenly) switches it to SipHash; tests pass less.
    init(longRun: Int = 128) {
        self.longRun = longRun
    }

    /// Whether a long probe run switched the table to SipHash.
    var usesSipHash: Bool { flooded }

    /// The comm with the id whose UTF-8 bytes are `id`.
    subscript(utf8 id: UnsafeRawBufferPointer) -> Comm? {
        guard count > 0 else { return nil }
        let h = hash(id)
        guard let index = find(id, hash: h) else { return nil }
        return slots[index].comm
    }

    /// The comm with id `id`; setting nil removes it, setting a comm adds or replaces it.
    subscript(_ id: String) -> Comm? {
        get {
            var id = id
            return id.withUTF8 { self[utf8: UnsafeRawBufferPointer($0)] }
        }
        set {
            if let newValue {
                insert(newValue, id: id)
            } else {
                removeValue(forKey: id)
            }
        }
    }

    /// Removes the comm with id `id`, returning it, or nil if there was none.
    @discardableResult
    mutating func removeValue(forKey id: String) -> Comm? {
        guard count > 0 else { return nil }
        var id = id
        let found = id.withUTF8 { bytes -> Int? in
            let raw = UnsafeRawBufferPointer(bytes)
            return find(raw, hash: hash(raw))
        }
        guard let index = found else { return nil }
        let comm = slots[index].comm
        remove(at: index)
        return comm
    }

    /// Every open comm, in no particular order.
    var values: [Comm] { slots.compactMap(\.comm) }

    /// Removes every comm.
    mutating func removeAll() {
        slots = []
        count = 0
    }

    // MARK: The table

    private func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        if flooded {
            var hasher = Hasher()
            hasher.combine(bytes: bytes)
            return UInt64(UInt(bitPattern: hasher.finalize()))
        }
        // Words of the id (the last one overlapping the one before), each mixed with the seed
        // by a full-width multiply, as wyhash does.
        let n = bytes.count
        var h = seed ^ UInt64(n) &* 0x9E37_79B9_7F4A_7C15
        if n >= 8 {
            var i = 0
            while i &+ 8 < n {
                h = Self.mix(h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self), 0xA076_1D64_78BD_642F)
                i &+= 8
            }
            h = Self.mix(h ^ bytes.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self), 0xE703_7ED1_A0B4_28DB)
        } else if n > 0 {
            var word: UInt64 = 0
            for i in 0..<n { word |= UInt64(bytes[i]) << UInt64(i &* 8) }
            h = Self.mix(h ^ word, 0xE703_7ED1_A0B4_28DB)
        }
        return Self.mix(h, 0x8EBC_6AF0_9C88_C6E3)
    }

    @inline(__always)
    private static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    /// The slot holding the id `bytes`, whose hash is `hash`.
    private func find(_ bytes: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        slots.withUnsafeBufferPointer { slots in
            let mask = slots.count &- 1
            var i = Int(truncatingIfNeeded: hash) & mask
            while let comm = slots[i].comm {
                if slots[i].hash == hash, Self.id(of: comm, equals: bytes) { return i }
                i = (i &+ 1) & mask
            }
            return nil
        }
    }

    private static func id(of comm: Comm, equals bytes: UnsafeRawBufferPointer) -> Bool {
        let equal = comm.id.utf8.withContiguousStorageIfAvailable { own in
            own.count == bytes.count && (own.count == 0 || memcmp(own.baseAddress!, bytes.baseAddress!, own.count) == 0)
        }
        return equal ?? comm.id.utf8.elementsEqual(bytes)
    }

    private mutating func insert(_ comm: Comm, id: String) {
        var id = id
        let h = id.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
        if !slots.isEmpty {
            let found = id.withUTF8 { find(UnsafeRawBufferPointer($0), hash: h) }
            if let found {
                slots[found].comm = comm
                return
            }
        }
        if (count &+ 1) * 2 > slots.count { rebuild(capacity: max(16, slots.count * 2), rehash: false) }
        count &+= 1
        if !place(Slot(hash: h, comm: comm)), !flooded {
            flooded = true
            rebuild(capacity: slots.count, rehash: true)
        }
    }

    /// Puts `slot` in the first free place of its probe run; false if the run was long.
    @discardableResult
    private mutating func place(_ slot: Slot) -> Bool {
        let mask = slots.count &- 1
        var i = Int(truncatingIfNeeded: slot.hash) & mask
        var run = 0
        while slots[i].comm != nil {
            i = (i &+ 1) & mask
            run &+= 1
        }
        slots[i] = slot
        return run < longRun
    }

    /// Puts every comm into `capacity` fresh slots, with hashes recomputed if `rehash`.
    private mutating func rebuild(capacity: Int, rehash: Bool) {
        let old = slots
        slots = Array(repeating: Slot(hash: 0, comm: nil), count: capacity)
        for var slot in old where slot.comm != nil {
            if rehash {
                var id = slot.comm!.id
                slot.hash = id.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
            }
            place(slot)
        }
    }

    /// Empties slot `index` and shifts back the entries after it that would no longer be found.
    private mutating func remove(at index: Int) {
        let mask = slots.count &- 1
        var hole = index
        var next = index
        while true {
            next = (next &+ 1) & mask
            guard slots[next].comm != nil else { break }
            let home = Int(truncatingIfNeeded: slots[next].hash) & mask
            // The entry at `next` moves into the hole unless its home lies cyclically in
            // (hole, next]: moved there, it would sit before its home, where no probe looks.
            let staysPut = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if staysPut { continue }
            slots[hole] = slots[next]
            hole = next
        }
        slots[hole] = Slot(hash: 0, comm: nil)
        count &-= 1
    }
}
