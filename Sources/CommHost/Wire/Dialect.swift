/// The shape of frames on the wire.
///
/// - `jupyter`: one Jupyter-style message object per line (`msg_type`, `header`,
///   `parent_header`, `metadata`, `content`, `buffers`).
/// - `shinywidgets`: what py-shinywidgets exchanges through a Shiny session. Outbound comm frames
///   are `{"type": "shinywidgets_comm_open" | "..._msg" | "..._close", "message": "<JSON text>"}`;
///   inbound frames with a `msg_type` are read as `jupyter` frames, and those without are
///   `shinywidgets_comm_send` payloads, read as `comm_msg`.
public enum Dialect: String, Sendable, CaseIterable {
    /// Jupyter message objects in both directions.
    case jupyter
    /// The py-shinywidgets custom-message shapes.
    case shinywidgets
}
