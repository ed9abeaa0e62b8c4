import CommPluginAPI
import Glibc

/// The handle tokens plugins hold (`commhost_comm *`, `commhost_session *`):
/// a slot index and a generation packed in one pointer-sized value, never an
/// object address. A token is checked against its slot on every use, so a
/// handle the plugin no longer holds, a forged one or one release too many
/// is refused without touching host memory (ABI requirement 14).
///
/// A slot is live while the host holds its object (a comm until its close
/// callback returns, a session until its last session_end) or while the
/// plugin holds references on it. Once the host lets go, lookups give no
/// object (the host function answers `COMMHOST_ECLOSED`) but the slot's
/// `names` (the id text a plugin may still read) stay until the last plugin
/// reference is given back; then the slot is freed and its generation moves
/// on, so the old token is dead.
final class HandleTable<Object: AnyObject>: @unchecked Sendable {
    // @unchecked: `slots` and `free` are only touched holding `lock`.

    /// What a token refers to now.
    enum Lookup {
        /// The host still holds the object.
        case live(Object)
        /// The object is gone (a closed comm, an ended session) but the
        /// plugin holds a reference: its names are still readable.
        case ended(HandleNames)
        /// Not a token of a live slot.
        case invalid
    }

    /// 24 bytes: a session with 100 000 comms keeps 100 000 of these.
    /// The host holds the slot exactly while `object` is set.
    private struct Slot {
        var object: Object?
        var names: HandleNames?
        var generation: UInt32 = 1
        var pluginReferences: UInt32 = 0
    }

    /// Guards `slots` and `free`: plugin threads look handles up while sessions add and end them.
    private let lock = ConditionLock()
    /// Unchecked for exclusivity at run time (every plugin call looks a
    /// handle up): `lock` already makes each access exclusive.
    @exclusivity(unchecked) private var slots: [Slot] = []
    private var free: [Int] = []

    /// Registers `object`, which the host holds until `hostRelease`.
    func register(_ object: Object, names: HandleNames) -> UInt {
        lock.withLock {
            let index: Int
            if let reused = free.popLast() {
                index = reused
            } else {
                index = slots.count
                slots.append(Slot())
            }
            slots[index].object = object
            slots[index].names = names
            return Self.token(index: index, generation: slots[index].generation)
        }
    }

    /// What `token` refers to.
    func lookup(_ token: UInt) -> Lookup {
        lock.withLock {
            guard let index = validIndex(token) else { return .invalid }
            if let object = slots[index].object { return .live(object) }
            return slots[index].names.map(Lookup.ended) ?? .invalid
        }
    }

    /// The names of `token`'s slot, live or ended.
    func names(_ token: UInt) -> HandleNames? {
        lock.withLock { validIndex(token).flatMap { slots[$0].names } }
    }

    /// Takes a plugin reference; false when `token` is not a live slot (or
    /// already carries 2^32 - 1 references).
    func retain(_ token: UInt) -> Bool {
        lock.withLock {
            guard let index = validIndex(token), slots[index].pluginReferences < .max else { return false }
            slots[index].pluginReferences += 1
            return true
        }
    }

    /// Gives back a plugin reference; false when the plugin holds none.
    func release(_ token: UInt) -> Bool {
        lock.withLock {
            guard let index = validIndex(token), slots[index].pluginReferences > 0 else { return false }
            slots[index].pluginReferences -= 1
            freeIfUnused(index)
            return true
        }
    }

    /// The host lets go of the object (its comm closed, its session ended).
    func hostRelease(_ token: UInt) {
        lock.withLock {
            guard let index = validIndex(token) else { return }
            slots[index].object = nil
            freeIfUnused(index)
        }
    }

    /// Slots in use (live or held by plugin references), for tests.
    var count: Int { lock.withLock { slots.count - free.count } }

    private func freeIfUnused(_ index: Int) {
        guard slots[index].object == nil, slots[index].pluginReferences == 0 else { return }
        slots[index].names = nil
        slots[index].object = nil
        slots[index].generation &+= 1
        if slots[index].generation == 0 { slots[index].generation = 1 }
        free.append(index)
    }

    private func validIndex(_ token: UInt) -> Int? {
        let index = Int(token & 0xffff_ffff) - 1
        let generation = UInt32(truncatingIfNeeded: token >> 32)
        guard index >= 0, index < slots.count, generation != 0, slots[index].generation == generation,
              slots[index].object != nil || slots[index].pluginReferences > 0 else { return nil }
        return index
    }

    private static func token(index: Int, generation: UInt32) -> UInt {
        UInt(generation) << 32 | UInt(index + 1)
    }
}

/// The text of a handle a plugin may read as borrowed slices (a comm's id
/// and target name, a session's id), kept while the handle is valid. Both
/// names live in one allocation (a comm's id and target name of up to 32
/// bytes together take a 64-byte heap block).
struct HandleNames: @unchecked Sendable {
    // @unchecked: `ManagedBuffer` cannot be `Sendable`; the storage is
    // written once in `make` and only read afterwards.
    private let storage: Storage

    init(_ first: String, _ second: String = "") {
        storage = Storage.make(first, second)
    }

    /// The first name (a comm's id, a session's id) as a borrowed slice.
    var firstSlice: commhost_str { storage.slice(second: false) }
    /// The second name (a comm's target name) as a borrowed slice.
    var secondSlice: commhost_str { storage.slice(second: true) }

    /// The names' lengths, then their UTF-8 bytes, back to back.
    private final class Storage: ManagedBuffer<(first: UInt32, second: UInt32), UInt8> {
        static func make(_ first: String, _ second: String) -> Storage {
            let firstCount = first.utf8.count, secondCount = second.utf8.count
            let made = create(minimumCapacity: max(firstCount + secondCount, 1)) { _ in
                (UInt32(firstCount), UInt32(secondCount))
            }
            made.withUnsafeMutablePointerToElements { bytes in
                var at = bytes
                for byte in first.utf8 { at.initialize(to: byte); at += 1 }
                for byte in second.utf8 { at.initialize(to: byte); at += 1 }
            }
            return unsafeDowncast(made, to: Storage.self)
        }

        /// The bytes stay where they are for the object's lifetime (tail
        /// storage is never moved), so the slice outlives this call.
        func slice(second: Bool) -> commhost_str {
            withUnsafeMutablePointers { lengths, bytes in
                let start = second ? Int(lengths.pointee.first) : 0
                let count = Int(second ? lengths.pointee.second : lengths.pointee.first)
                return commhost_str(ptr: UnsafeRawPointer(bytes + start).assumingMemoryBound(to: CChar.self), len: count)
            }
        }
    }
}
