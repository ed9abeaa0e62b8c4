import CommPluginAPI

/// A plugin callback's failure: its status code and the text it set.
public struct PluginCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The negative status the callback returned.
    public var status: Int32
    /// The plugin's error text, or nil when it set none.
    public var text: String?

    public var description: String {
        "\(Self.name(of: status)) (\(status))" + (text.map { ": \($0)" } ?? "")
    }

    /// The header's name for a status code, e.g. `COMMHOST_EFAIL`.
    public static func name(of status: Int32) -> String {
        switch status {
        case COMMHOST_OK: "COMMHOST_OK"
        case COMMHOST_EFAIL: "COMMHOST_EFAIL"
        case COMMHOST_EINVAL: "COMMHOST_EINVAL"
        case COMMHOST_EJSON: "COMMHOST_EJSON"
        case COMMHOST_ECLOSED: "COMMHOST_ECLOSED"
        case COMMHOST_ENOMEM: "COMMHOST_ENOMEM"
        case COMMHOST_EUNSUPPORTED: "COMMHOST_EUNSUPPORTED"
        case COMMHOST_ELIMIT: "COMMHOST_ELIMIT"
        case COMMHOST_EEXISTS: "COMMHOST_EEXISTS"
        case COMMHOST_ESTATE: "COMMHOST_ESTATE"
        default: "status"
        }
    }
}
