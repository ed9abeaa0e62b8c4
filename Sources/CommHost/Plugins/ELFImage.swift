import Glibc

/// What commhost needs to know about a library file before it is dlopened:
/// whether it is an ELF shared object for this machine, and whether it holds
/// Swift code (which must never be unloaded). Reads the bytes it is given,
/// never the file system.
struct ELFImage {
    /// The file links the Swift runtime or carries Swift metadata sections.
    let containsSwift: Bool

    /// Why bytes are not a loadable shared object.
    struct Refusal: Error {
        var reason: String
    }

    private static let elfClass64: UInt8 = 2
    private static let littleEndian: UInt8 = 1
    private static let typeShared: UInt16 = 3
    #if arch(x86_64)
    private static let hostMachine: UInt16 = 62
    #elseif arch(arm64)
    private static let hostMachine: UInt16 = 183
    #endif

    /// Checks the ELF header of `bytes` and scans its section names and
    /// dynamic string table for Swift. Throws a one-line reason.
    init(_ bytes: UnsafeRawBufferPointer) throws(Refusal) {
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw Refusal(reason: "not an ELF file (no ELF magic); expected a shared library (.so)")
        }
        guard bytes[4] == Self.elfClass64, bytes[5] == Self.littleEndian else {
            throw Refusal(reason: "ELF file is not 64-bit little-endian, so it cannot be loaded by this host")
        }
        let type = Self.u16(bytes, 16)
        guard type == Self.typeShared else {
            let what = type == 2 ? "an executable" : type == 1 ? "a relocatable object (.o)" : "ELF type \(type)"
            throw Refusal(reason: "ELF file is \(what), not a shared object; build it with -shared")
        }
        let machine = Self.u16(bytes, 18)
        guard machine == Self.hostMachine else {
            throw Refusal(reason: "ELF shared object is for machine \(machine), this host is machine \(Self.hostMachine)")
        }
        // dlopen maps segments straight from the file; one that reaches past
        // its end (a half-written build) would fault with SIGBUS when touched.
        let phoff = Int(clamping: Self.u64(bytes, 0x20))
        let phentsize = Int(Self.u16(bytes, 0x36))
        let phnum = Int(Self.u16(bytes, 0x38))
        guard phentsize >= 56, phnum > 0, phoff <= bytes.count, phnum <= (bytes.count - phoff) / phentsize else {
            throw Refusal(reason: "ELF file is truncated or damaged: its program headers lie outside the file (\(bytes.count) bytes); it may still be being written")
        }
        for i in 0..<phnum {
            let base = phoff + i * phentsize
            let end = Self.u64(bytes, base + 0x08).addingReportingOverflow(Self.u64(bytes, base + 0x20))
            guard !end.overflow, end.partialValue <= UInt64(bytes.count) else {
                throw Refusal(reason: "ELF file is truncated: segment \(i) ends at byte \(end.partialValue) but the file has \(bytes.count) bytes; it may still be being written")
            }
        }
        let shoff = Self.u64(bytes, 0x28)
        let sectionsEnd = shoff + UInt64(Self.u16(bytes, 0x3a)) * UInt64(Self.u16(bytes, 0x3c))
        guard sectionsEnd <= UInt64(bytes.count) else {
            throw Refusal(reason: "ELF file is truncated: its section headers end at byte \(sectionsEnd) but the file has \(bytes.count) bytes; it may still be being written")
        }
        containsSwift = Self.scanForSwift(bytes)
    }

    /// True when a section is named `swift5_*` or the dynamic string table
    /// names `libswiftCore`. Malformed section tables count as "no Swift
    /// found"; dlopen then judges the file.
    private static func scanForSwift(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let shoff = Int(clamping: u64(bytes, 0x28))
        let shentsize = Int(u16(bytes, 0x3a))
        let shnum = Int(u16(bytes, 0x3c))
        let shstrndx = Int(u16(bytes, 0x3e))
        guard shentsize >= 64, shnum > 0, shstrndx < shnum,
              shoff > 0, shoff <= bytes.count, shnum <= (bytes.count - shoff) / shentsize else { return false }
        func section(_ i: Int) -> (name: Int, type: UInt32, offset: Int, size: Int)? {
            let base = shoff + i * shentsize
            let offset = Int(clamping: u64(bytes, base + 0x18))
            let size = Int(clamping: u64(bytes, base + 0x20))
            guard offset <= bytes.count, size <= bytes.count - offset else { return nil }
            return (Int(u32(bytes, base)), u32(bytes, base + 4), offset, size)
        }
        guard let names = section(shstrndx) else { return false }
        for i in 0..<shnum {
            guard let s = section(i) else { continue }
            if s.name < names.size, hasPrefix(bytes, at: names.offset + s.name, limit: names.offset + names.size, "swift5_") {
                return true
            }
            // .dynstr is the string table (type 3) named ".dynstr".
            if s.type == 3, s.name < names.size,
               hasPrefix(bytes, at: names.offset + s.name, limit: names.offset + names.size, ".dynstr\0"),
               contains(bytes, from: s.offset, to: s.offset + s.size, "libswiftCore") {
                return true
            }
        }
        return false
    }

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, at start: Int, limit: Int, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard start + n <= limit else { return false }
        return memcmp(bytes.baseAddress! + start, prefix.utf8Start, n) == 0
    }

    private static func contains(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int, _ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        guard to - from >= n else { return false }
        let first = needle.utf8Start.pointee
        var i = from
        while i + n <= to {
            if bytes[i] == first, memcmp(bytes.baseAddress! + i, needle.utf8Start, n) == 0 { return true }
            i += 1
        }
        return false
    }

    private static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        guard at + 2 <= b.count else { return 0 }
        return UInt16(b[at]) | UInt16(b[at + 1]) << 8
    }

    private static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        guard at + 4 <= b.count else { return 0 }
        return UInt32(u16(b, at)) | UInt32(u16(b, at + 2)) << 16
    }

    private static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        guard at + 8 <= b.count else { return 0 }
        return UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32
    }
}
