/// A widget model to open: its type and its full initial state (the
/// `_model_*`/`_view_*` members included), ready for
/// ``Session/openWidget(_:_:id:metadata:instance:)``.
///
/// The factories give each standard model the state ipywidgets 7 sends for
/// it, member for member, so the shipped html-manager renders it without
/// console errors; a model that shows on the page takes a ``WidgetReference``
/// to its `LayoutModel` (and, for described controls, its style model),
/// which must be opened first:
///
/// ```swift
/// let layout = try session.openWidget(Model.self, .layout())
/// let style = try session.openWidget(Model.self, .sliderStyle())
/// let slider = try session.openWidget(Model.self, .intSlider(value: 42, layout: layout, style: style))
/// try session.openWidget(Model.self, .vbox([slider], layout: try session.openWidget(Model.self, .layout())))
/// ```
/// (`Plugins/Widgets` builds its app this way.)
public struct Widget: Hashable, Sendable {
    /// Which classes render it.
    public var type: WidgetModelType
    /// The whole state sent with the comm_open.
    public var state: WidgetState

    /// A model of `type` with `state`; the type's identity members are set
    /// over whatever `state` has for them.
    public init(_ type: WidgetModelType, state: WidgetState) {
        self.type = type
        self.state = state.merging(type.identity)
    }

    /// A `LayoutModel` with every CSS property the base module's
    /// `LayoutView` reads set to null, then `properties` (e.g.
    /// `["width": "300px"]`).
    public static func layout(_ properties: WidgetState = [:]) -> Widget {
        let names = [
            "align_content", "align_items", "align_self", "border", "bottom", "display", "flex", "flex_flow",
            "height", "justify_content", "justify_items", "left", "margin", "max_height", "max_width",
            "min_height", "min_width", "overflow", "overflow_x", "overflow_y", "order", "padding", "right", "top",
            "visibility", "width", "object_fit", "object_position", "grid_auto_columns", "grid_auto_flow",
            "grid_auto_rows", "grid_gap", "grid_template_rows", "grid_template_columns", "grid_template_areas",
            "grid_row", "grid_column", "grid_area",
        ]
        let nulls = WidgetState(Dictionary(uniqueKeysWithValues: names.map { ($0, WidgetValue.null) }))
        return Widget(.layout, state: nulls.merging(properties))
    }

    /// A `DescriptionStyleModel` (for Label, HTML).
    public static func descriptionStyle(descriptionWidth: String = "") -> Widget {
        Widget(.descriptionStyle, state: ["description_width": .string(descriptionWidth)])
    }

    /// A `SliderStyleModel`; `handleColor` nil leaves the theme's colour.
    public static func sliderStyle(descriptionWidth: String = "", handleColor: String? = nil) -> Widget {
        Widget(.sliderStyle, state: ["description_width": .string(descriptionWidth),
                                     "handle_color": handleColor.map(WidgetValue.string) ?? .null])
    }

    /// A `ButtonStyleModel`; `buttonColor` nil leaves the theme's colour.
    public static func buttonStyle(buttonColor: String? = nil, fontWeight: String = "") -> Widget {
        Widget(.buttonStyle, state: ["button_color": buttonColor.map(WidgetValue.string) ?? .null,
                                     "font_weight": .string(fontWeight)])
    }

    /// An `IntSliderModel` (style: a ``sliderStyle(descriptionWidth:handleColor:)``).
    public static func intSlider(value: Int, min: Int = 0, max: Int = 100, step: Int = 1, description: String = "",
                                 continuousUpdate: Bool = true, layout: WidgetReference,
                                 style: WidgetReference) -> Widget {
        Widget(.intSlider, state: described(description, layout: layout, style: style).merging([
            "value": .int(value), "min": .int(min), "max": .int(max), "step": .int(step),
            "continuous_update": .bool(continuousUpdate), "disabled": false, "orientation": "horizontal",
            "readout": true, "readout_format": "d",
        ]))
    }

    /// A `LabelModel` showing `value` as text (style: a ``descriptionStyle(descriptionWidth:)``).
    public static func label(_ value: String, description: String = "", layout: WidgetReference,
                             style: WidgetReference) -> Widget {
        Widget(.label, state: described(description, layout: layout, style: style).merging([
            "value": .string(value), "placeholder": "\u{200B}",
        ]))
    }

    /// An `HTMLModel` showing `value` as HTML (style: a ``descriptionStyle(descriptionWidth:)``).
    public static func html(_ value: String, description: String = "", layout: WidgetReference,
                            style: WidgetReference) -> Widget {
        Widget(.html, state: described(description, layout: layout, style: style).merging([
            "value": .string(value), "placeholder": "\u{200B}",
        ]))
    }

    /// A `ButtonModel` labelled `description`; its clicks arrive as the
    /// custom message `{"event": "click"}` (style: a ``buttonStyle(buttonColor:fontWeight:)``).
    public static func button(_ description: String, tooltip: String = "", icon: String = "",
                              layout: WidgetReference, style: WidgetReference) -> Widget {
        Widget(.button, state: [
            "_dom_classes": [], "layout": layout.value, "style": style.value,
            "description": .string(description), "tooltip": .string(tooltip), "icon": .string(icon),
            "button_style": "", "disabled": false,
        ])
    }

    /// An `ImageModel` showing the encoded picture `value` (`format` "png",
    /// "jpeg", ...; `width`/`height` as CSS text or empty). The picture
    /// travels as a buffer at path `["value"]`.
    public static func image(_ value: [UInt8], format: String = "png", width: String = "", height: String = "",
                             layout: WidgetReference) -> Widget {
        Widget(.image, state: [
            "_dom_classes": [], "layout": layout.value, "value": .bytes(value), "format": .string(format),
            "width": .string(width), "height": .string(height),
        ])
    }

    /// A `VBoxModel` stacking `children` (opened before it).
    public static func vbox(_ children: [WidgetReference], layout: WidgetReference) -> Widget {
        Widget(.vbox, state: box(children, layout: layout))
    }

    /// An `HBoxModel` placing `children` (opened before it) side by side.
    public static func hbox(_ children: [WidgetReference], layout: WidgetReference) -> Widget {
        Widget(.hbox, state: box(children, layout: layout))
    }

    /// The references this model's state makes to other models (its
    /// `layout`, `style`, `children`, ...), in the order found: each must be
    /// open before this one is.
    public var references: [WidgetReference] {
        func collect(_ value: WidgetValue, into found: inout [WidgetReference]) {
            switch value {
            case .string: if let reference = WidgetReference(value) { found.append(reference) }
            case .array(let items): items.forEach { collect($0, into: &found) }
            case .object(let members): members.keys.sorted().forEach { collect(members[$0]!, into: &found) }
            default: break
            }
        }
        var found: [WidgetReference] = []
        state.values.keys.sorted().forEach { collect(state.values[$0]!, into: &found) }
        return found
    }

    private static func described(_ description: String, layout: WidgetReference, style: WidgetReference) -> WidgetState {
        ["_dom_classes": [], "layout": layout.value, "style": style.value,
         "description": .string(description), "description_tooltip": .null]
    }

    private static func box(_ children: [WidgetReference], layout: WidgetReference) -> WidgetState {
        ["_dom_classes": [], "layout": layout.value, "box_style": "", "children": .array(children.map(\.value))]
    }
}
