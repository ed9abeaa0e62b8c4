import Glibc

/// A handle from `dlopen`: the only place commhost calls the dl* functions.
struct DynamicLibrary: @unchecked Sendable {
    // @unchecked: the handle is an opaque token that glibc lets any thread use.
    let handle: UnsafeMutableRawPointer

    /// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`, adding `RTLD_NODELETE` when the
    /// library must never be unmapped (Swift code: the runtime keeps pointers
    /// into its metadata). Throws the `dlerror()` text.
    static func open(_ path: String, neverUnload: Bool) throws(DynamicLibraryError) -> DynamicLibrary {
        let flags = RTLD_NOW | RTLD_LOCAL | (neverUnload ? RTLD_NODELETE : 0)
        guard let handle = dlopen(path, flags) else {
            throw DynamicLibraryError(message: lastError() ?? "dlopen failed")
        }
        return DynamicLibrary(handle: handle)
    }

    /// The address of the exported symbol `name`, or nil.
    func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        _ = dlerror()
        return dlsym(handle, name)
    }

    /// `dlclose`. Only for libraries opened without `neverUnload` and with no call in flight.
    func close() {
        dlclose(handle)
    }

    private static func lastError() -> String? {
        guard let text = dlerror() else { return nil }
        return String(cString: text)
    }
}

/// The text `dlerror()` gave.
struct DynamicLibraryError: Error {
    var message: String
}
