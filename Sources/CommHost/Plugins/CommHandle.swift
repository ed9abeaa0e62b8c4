import CommPluginAPI
import Glibc

/// The host object behind a plugin's `commhost_comm *`. The Plugins layer
/// only knows this base class; the Comms layer's `Comm` gives the host
/// functions their meaning by overriding the `host…` methods. The handle a
/// plugin sees is this object's unretained address; `retain_comm` and
/// `release_comm` are Swift retain and release on it.
class CommHandle: @unchecked Sendable {
    // @unchecked: the id and target name are immutable after init and their
    // bytes are only freed in deinit; subclasses guard their own state.

    /// The comm id, as Swift text.
    let id: String
    /// The target name, as Swift text.
    let targetName: String
    private let idBytes: UnsafeMutableBufferPointer<UInt8>
    private let targetBytes: UnsafeMutableBufferPointer<UInt8>

    init(id: String, targetName: String) {
        self.id = id
        self.targetName = targetName
        idBytes = Self.copy(id)
        targetBytes = Self.copy(targetName)
    }

    deinit {
        idBytes.deallocate()
        targetBytes.deallocate()
    }

    /// The handle value passed to plugins.
    var opaque: OpaquePointer { OpaquePointer(Unmanaged.passUnretained(self).toOpaque()) }

    /// The object behind a plugin's handle.
    static func from(_ handle: OpaquePointer) -> CommHandle {
        Unmanaged<CommHandle>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
    }

    /// The id as a borrowed slice valid while this object lives.
    var idSlice: commhost_str { Self.slice(idBytes) }
    /// The target name as a borrowed slice valid while this object lives.
    var targetSlice: commhost_str { Self.slice(targetBytes) }

    /// host->send. Overridden by the comm layer.
    func hostSend(_ message: UnsafePointer<commhost_message>?) -> commhost_status { COMMHOST_ECLOSED }

    /// host->close. Overridden by the comm layer.
    func hostClose(_ message: UnsafePointer<commhost_message>?) -> commhost_status { COMMHOST_ECLOSED }

    /// host->open with this comm as origin. Overridden by the comm layer.
    func hostOpen(targetName: String, commID: String, message: UnsafePointer<commhost_message>?,
                  instance: UnsafeMutableRawPointer?) -> (commhost_status, CommHandle?) {
        (COMMHOST_ECLOSED, nil)
    }

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
