/// Finds the file a target's `library` names and makes sure it lies inside
/// one of the directories commhost may load from.
///
/// A library without `/` is a file name, looked for in each search
/// directory in order (plugin paths, then the executable's directory); the
/// first directory holding an entry of that name wins. A library with `/`
/// is a path: relative ones are looked for under each search directory the
/// same way, absolute ones as they are. Either way the file found is
/// resolved with `realpath` (symlinks, `.` and `..`) and must then be inside
/// one of the search directories, so neither a symlink nor `..` can lead
/// outside them.
struct LibraryResolver {
    /// Why a library cannot be used, as the message for the `library` value.
    struct Problem: Error {
        var message: String
    }

    /// Real paths of the directories searched, in order.
    let searchDirectories: [String]
    private var cache: [String: Result<String, Problem>] = [:]

    init(searchDirectories: [String]) {
        self.searchDirectories = searchDirectories
    }

    /// The real path of the library `library` names, or why there is none.
    mutating func resolve(_ library: String) -> Result<String, Problem> {
        if let known = cache[library] { return known }
        let result = lookUp(library)
        cache[library] = result
        return result
    }

    private func lookUp(_ library: String) -> Result<String, Problem> {
        let searched = searchDirectories.isEmpty ? "nothing: no plugin path exists" : searchDirectories.joined(separator: ", ")
        let candidates = library.hasPrefix("/") ? [library] : searchDirectories.map { FileSystem.absolute(library, relativeTo: $0) }
        guard let found = candidates.first(where: FileSystem.entryExists) else {
            let place = library.hasPrefix("/") ? "no such file" : "no file \(JSONText.string(library)) in plugin_paths"
            return .failure(Problem(message: "\(place) (searched: \(searched))"))
        }
        let real: String
        switch FileSystem.realPath(found) {
        case .success(let resolved): real = resolved
        case .failure(let failure):
            return .failure(Problem(message: "\(found) cannot be resolved (a dangling symlink?): \(failure)"))
        }
        guard searchDirectories.contains(where: { FileSystem.isInside(real, directory: $0) }) else {
            return .failure(Problem(message: "\(JSONText.string(library)) resolves to \(real), which is outside every plugin path (\(searched)); move the library into one of them or add its directory to plugin_paths"))
        }
        return .success(real)
    }
}
