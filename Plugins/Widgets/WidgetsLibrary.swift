import CommPluginKit
import Synchronization

/// Widgets: a small ipywidgets app served from Swift. Every new session
/// gets ``WidgetsApp``'s models, opened by the plugin (the browser never
/// opens comms); handler `widget` (``WidgetModel``) serves each of them.
/// Bind any target to it in the manifest so the host loads the library:
///
/// ```json
/// {"target_name": "commhost.widgets", "library": "libWidgetsPlugin.so", "handler": "widget"}
/// ```
///
/// The library keeps a registry of each session's app models by role, which
/// the models fill as they are opened or restored after a reload and empty
/// as they close, so the slider's comm finds the label and image it drives.
final class WidgetsLibrary: CommLibrary {
    /// A model in the registry. @unchecked Sendable: the model is only
    /// touched on its session's serialized context (its callbacks and the
    /// session's), which is where the registry hands it out: lookups name
    /// the session they run for.
    private struct Entry: @unchecked Sendable {
        weak var model: WidgetModel?
    }

    /// Session id -> role -> model, for the roles the app's logic uses.
    private let registry = Mutex<[String: [Role: Entry]]>([:])

    init(host: PluginHost) throws {}

    func sessionStarted(_ session: Session, cause: SessionCause) throws {
        switch cause {
        case .started: try WidgetsApp.open(in: session)
        case .resumed: try app(in: session).refresh()
        default: break
        }
    }

    /// Records `model` under its role in its session (parts are not recorded).
    func register(_ model: WidgetModel) throws {
        guard model.role != .part else { return }
        let session = model.comm.session.id
        try registry.withLock { registry in
            if let other = registry[session]?[model.role]?.model, other !== model {
                throw PluginError(.alreadyExists, "session \(session) already has a \(model.role) model "
                    + "(comm \(other.comm.id)); the app has one of each")
            }
            registry[session, default: [:]][model.role] = Entry(model: model)
        }
    }

    /// Forgets `model` (at its close).
    func unregister(_ model: WidgetModel) {
        let session = model.comm.session.id
        registry.withLock { registry in
            guard registry[session]?[model.role]?.model === model else { return }
            registry[session]?[model.role] = nil
            if registry[session]?.isEmpty == true { registry[session] = nil }
        }
    }

    /// The app of `session`: its slider, label and image. Throws
    /// ``PluginError`` when one of them is not open (closed, or not handed
    /// off by a reload).
    func app(in session: Session) throws -> WidgetsApp {
        func model(_ role: Role) throws -> WidgetModel {
            let entry = registry.withLock { $0[session.id]?[role] }
            guard let model = entry?.model else {
                throw PluginError(.failed, "session \(session.id) has no open \(role) model; the widgets app "
                    + "needs its slider, label and image")
            }
            return model
        }
        return WidgetsApp(slider: try model(.slider), label: try model(.label), image: try model(.image))
    }
}

/// The library's entry: the descriptor with the library type and handler `widget`.
@c(commhost_plugin_entry)
public func commhostPluginEntry() -> UnsafeRawPointer? {
    PluginExport.descriptor(name: "widgets", version: "1.0.0", library: WidgetsLibrary.self, handlers: [WidgetModel.self])
}
