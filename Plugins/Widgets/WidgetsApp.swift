import CommPluginKit

/// The app every session gets, as one VBox: an IntSlider (0...100, starting
/// at 42), a Label showing its value (``Gauge/label(_:)``), an Image of a
/// gauge drawn for the value (``Gauge/png(value:min:max:)``), and a Reset
/// button that sets the slider back to 0.
///
/// A value holding the session's models, looked up for each message from
/// ``WidgetsLibrary``'s registry; the models themselves keep the state.
struct WidgetsApp {
    let slider: WidgetModel
    let label: WidgetModel
    let image: WidgetModel

    /// The slider's first value and range.
    static let initialValue = 42, minimum = 0, maximum = 100

    /// Metadata member that marks the root VBox's comm_open (opened last),
    /// so a relay knows which model to display: `"commhost_root": true`.
    static let rootMarker = "commhost_root"

    /// Opens the app's models in `session`, each after the models its state
    /// refers to: every layout and style before its widget, every child
    /// before the VBox, which goes last with metadata `commhost_root: true`.
    static func open(in session: Session) throws {
        func open(_ widget: Widget, as role: Role, metadata: [String: WidgetValue] = [:]) throws -> WidgetReference {
            try session.openWidget(WidgetModel.self, widget, metadata: metadata) { comm in
                try WidgetModel(comm: comm, role: role, widget: widget.state)
            }
        }
        let value = initialValue
        let slider = try open(.intSlider(value: value, min: minimum, max: maximum,
                                         layout: open(.layout(), as: .part), style: open(.sliderStyle(), as: .part)),
                              as: .slider)
        let label = try open(.label(Gauge.label(value), layout: open(.layout(), as: .part),
                                    style: open(.descriptionStyle(), as: .part)),
                             as: .label)
        let image = try open(.image(Gauge.png(value: value, min: minimum, max: maximum), format: "png",
                                    layout: open(.layout(), as: .part)),
                             as: .image)
        let button = try open(.button("Reset", tooltip: "Set the slider to 0", layout: open(.layout(), as: .part),
                                      style: open(.buttonStyle(), as: .part)),
                              as: .button)
        _ = try open(.vbox([slider, label, image, button], layout: open(.layout(), as: .part)), as: .root,
                 metadata: [rootMarker: true])
    }

    /// An update from the client for `model`: checked field by field (see
    /// ``WidgetState/applying(_:)``; the slider's value must also lie in its
    /// range), applied, and when the slider's value changed, shown.
    func received(_ change: WidgetState, on model: WidgetModel) throws {
        let updated = try model.widget.applying(change)
        if model === slider, let value = change["value"]?.intValue {
            let (low, high) = range(of: updated)
            guard (low...high).contains(value) else {
                throw PluginError(.invalidArgument, "an update sets the IntSliderModel's value to \(value), "
                    + "outside its range \(low)...\(high)")
            }
            model.accept(updated)
            try show(value)
        } else {
            model.accept(updated)
        }
    }

    /// A custom message from the client: the button's click resets.
    func received(custom content: WidgetValue, from model: WidgetModel) throws {
        guard model.role == .button else {
            throw PluginError(.invalidArgument, "the \(model.modelName) takes no custom messages; got \(content.described)")
        }
        guard content["event"]?.stringValue == "click" else {
            throw PluginError(.invalidArgument, "the Reset button understands the custom content {\"event\":\"click\"}; "
                + "got \(content.described)")
        }
        try reset()
    }

    /// Sets the slider to 0 (the client's slider moves too), and shows it.
    func reset() throws {
        try slider.set(["value": 0])
        try show(0)
    }

    /// Brings the label and image in line with the slider under this
    /// version's code (after a reload the label format may have changed);
    /// sends only what differs.
    func refresh() throws {
        let value = slider.widget["value"]?.intValue ?? Self.initialValue
        let (text, picture) = views(of: value)
        if label.widget["value"] != text { try label.set(["value": text]) }
        if image.widget["value"] != picture { try image.set(["value": picture]) }
    }

    /// Shows `value` in the label and the image.
    private func show(_ value: Int) throws {
        let (text, picture) = views(of: value)
        try label.set(["value": text])
        try image.set(["value": picture])
    }

    private func views(of value: Int) -> (text: WidgetValue, picture: WidgetValue) {
        let (low, high) = range(of: slider.widget)
        return (.string(Gauge.label(value)), .bytes(Gauge.png(value: value, min: low, max: high)))
    }

    private func range(of state: WidgetState) -> (Int, Int) {
        (state["min"]?.intValue ?? Self.minimum, state["max"]?.intValue ?? Self.maximum)
    }
}
