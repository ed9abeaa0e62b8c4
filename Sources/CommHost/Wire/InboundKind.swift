/// Which message an inbound frame carries.
public enum InboundKind: Sendable, Equatable {
    /// `comm_open`: create a comm for `targetName`.
    case commOpen
    /// `comm_msg` (or a `shinywidgets_comm_send` payload).
    case commMsg
    /// `comm_close`.
    case commClose
    /// `comm_info_request`, optionally filtered by `targetName`.
    case commInfoRequest
    /// `commhost_stats_request`: the host's own counters.
    case statsRequest
}
