import CommPluginKit

/// What a model is for in the app (``WidgetsApp``); layouts and styles are
/// parts that only other models refer to.
enum Role: String, Codable, Sendable {
    case slider, label, image, button, root, part
}

/// Handler `widget`: one widget model comm of the app, whatever its model
/// (one handler type serves them all, since the client never opens comms
/// and this library sees only the comms it opened). It keeps the model's
/// whole state, speaks the widget protocol (``WidgetMessage``) and hands the
/// app's logic to ``WidgetsApp``.
///
/// It hands off its role and state on reload, so every model keeps its
/// comm id, its value and its references to the other models.
final class WidgetModel: SurvivesReload {
    static let handlerName = "widget"

    /// What survives a reload: the role and the whole model state (binary
    /// leaves included).
    struct State: Codable, Equatable {
        var role: Role
        var widget: WidgetState
    }

    let comm: Comm
    let role: Role
    /// The model's state as the client has it.
    private(set) var widget: WidgetState

    var state: State { State(role: role, widget: widget) }

    /// A model the app opened with `widget` as its state.
    init(comm: Comm, role: Role, widget: WidgetState) throws {
        self.comm = comm
        self.role = role
        self.widget = widget
        try library().register(self)
    }

    /// Refuses a comm the client opens: the models are the plugin's to open.
    init(comm: Comm, open message: CommMessage) throws {
        throw PluginError(.unsupported, "the widgets plugin opens its models itself when a session starts; "
            + "a client may not open a \"\(comm.targetName)\" comm")
    }

    init(comm: Comm, restoring state: State) throws {
        self.comm = comm
        self.role = state.role
        self.widget = state.widget
        try library().register(self)
    }

    /// The model name, for messages (`IntSliderModel`).
    var modelName: String { widget.modelName }

    func receive(_ message: CommMessage) throws {
        switch try WidgetMessage(message) {
        case .requestState:
            try comm.sendUpdate(widget)
        case .update(let change):
            try app().received(change, on: self)
        case .custom(let content, _):
            try app().received(custom: content, from: self)
        }
    }

    /// Takes `state` as the model's state without sending it (the client
    /// already has it: it sent the change).
    func accept(_ state: WidgetState) {
        widget = state
    }

    /// Sends `changes` to the client as an update (binary values as buffers
    /// at their paths) and, once sent, sets them over the model's state, so
    /// the state stays what the client has even when a send is refused
    /// (backpressure: ``WidgetsApp/refresh()`` catches up later).
    func set(_ changes: WidgetState) throws {
        try comm.sendUpdate(changes)
        widget = widget.merging(changes)
    }

    func close(cause: CloseCause, message: CommMessage) {
        (try? library())?.unregister(self)
    }

    private func library() throws -> WidgetsLibrary {
        try comm.library(as: WidgetsLibrary.self)
    }

    private func app() throws -> WidgetsApp {
        try library().app(in: comm.session)
    }
}
