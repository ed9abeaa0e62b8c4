/// The manifest's `reload`: whether the host watches the manifest and its
/// libraries for changes, and how long a file must stay quiet before a
/// change is acted on.
public struct ReloadSettings: Sendable, Equatable {
    /// `watch`: watch for changes (default false).
    public var watch: Bool
    /// `debounce_ms`: milliseconds without further change before reloading,
    /// 0...60000 (default 150).
    public var debounceMS: Int

    /// Settings with the given values (the defaults unless told otherwise).
    public init(watch: Bool = false, debounceMS: Int = 150) {
        self.watch = watch
        self.debounceMS = debounceMS
    }

    /// The values used for keys the manifest leaves out.
    public static let defaults = ReloadSettings()

    /// The accepted range of `debounce_ms`.
    public static let debounceRange = 0...60_000
}
