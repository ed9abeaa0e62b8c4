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

    private struct Slot {
        var generation: UInt32 = 1
        var object: Object?
        var names: HandleNames?
        var pluginReferences = 0
        var hostHolds = false
    }

    private let lock = ConditionLock()
    private var slots: [Slot] = []
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
            slots[index].hostHolds = true
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

    /// Takes a plugin reference; false when `token` is not a live slot.
    func retain(_ token: UInt) -> Bool {
        lock.withLock {
            guard let index = validIndex(token) else { return false }
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
            slots[index].hostHolds = false
            slots[index].object = nil
            freeIfUnused(index)
        }
    }

    /// Slots in use (live or held by plugin references), for tests.
    var count: Int { lock.withLock { slots.count - free.count } }

    private func freeIfUnused(_ index: Int) {
        guard !slots[index].hostHolds, slots[index].pluginReferences == 0 else { return }
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
              slots[index].hostHolds || slots[index].pluginReferences > 0 else { return nil }
        return index
    }

    private static func token(index: Int, generation: UInt32) -> UInt {
        UInt(generation) << 32 | UInt(index + 1)
    }
}

/// The text of a handle a plugin may read as borrowed slices (a comm's id
/// and target name, a session's id), kept while the handle is valid.
final class HandleNames: @unchecked Sendable {
    // @unchecked: immutable after init; the bytes are freed only in deinit.
    private let first: UnsafeMutableBufferPointer<UInt8>
    private let second: UnsafeMutableBufferPointer<UInt8>

    init(_ first: String, _ second: String = "") {
        self.first = Self.copy(first)
        self.second = Self.copy(second)
    }

    deinit {
        first.deallocate()
        second.deallocate()
    }

    /// The first name (a comm's id, a session's id) as a borrowed slice.
    var firstSlice: commhost_str { Self.slice(first) }
    /// The second name (a comm's target name) as a borrowed slice.
    var secondSlice: commhost_str { Self.slice(second) }

    private static func copy(_ text: String) -> UnsafeMutableBufferPointer<UInt8> {
        let utf8 = Array(text.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(utf8.count, 1))
        _ = buffer.initialize(from: utf8)
        return UnsafeMutableBufferPointer(rebasing: buffer[0..<utf8.count])
    }

    private static func slice(_ bytes: UnsafeMutableBufferPointer<UInt8>) -> commhost_str {
        commhost_str(ptr: UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self), len: bytes.count)
    }
}
