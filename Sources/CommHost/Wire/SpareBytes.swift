import Glibc

/// One large byte array kept between frames, so the storage a large buffer is decoded into is
/// reused instead of mapped afresh. glibc serves blocks up to its mmap threshold (which grows to
/// at most 32 MiB) from its heap and reuses them; a larger block is a new mapping each time,
/// whose pages fault in on first write and are unmapped on free. On this project's VM that cost
/// 63 ms of the 91 ms a 64 MiB decode took (28 ms into reused storage).
///
/// At most one array is kept, process-wide, the largest offered; its pages are given back to
/// the kernel with `MADV_FREE` while it waits, so memory pressure reclaims them at no cost (the
/// next use then faults them in again, zeroed; nothing is read before it is written).
enum SpareBytes {
    /// Arrays of at least this capacity are kept: below it glibc's own reuse does as well.
    static let minimumCapacity = 32 << 20

    /// Guards the one array kept: every session's reader offers and takes it.
    private static let spare = Locked<[UInt8]?>(nil)

    /// The kept array, emptied, if its capacity is at least `count`; otherwise nil (the array
    /// stays kept).
    static func take(capacity count: Int) -> [UInt8]? {
        spare.withLock { kept in
            guard let array = kept, array.capacity >= count else { return nil }
            kept = nil
            return array
        }
    }

    /// Offers `bytes` for reuse (emptied first) when it is large enough and larger than the array
    /// kept now; `bytes` is left empty either way.
    static func park(_ bytes: inout [UInt8]) {
        guard bytes.capacity >= minimumCapacity else { return }
        bytes.withUnsafeMutableBytes { raw in
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let start = (Int(bitPattern: raw.baseAddress) + page - 1) / page * page
            let end = (Int(bitPattern: raw.baseAddress) + raw.count) / page * page
            if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_FREE) }
        }
        bytes.removeAll(keepingCapacity: true)
        let offered = bytes
        bytes = []
        // The array this one displaces is freed after the lock is let go, when it goes out of scope.
        let displaced: [UInt8]? = spare.withLock { kept in
            guard (kept?.capacity ?? 0) < offered.capacity else { return nil }
            defer { kept = offered }
            return kept
        }
        _ = displaced
    }
}
