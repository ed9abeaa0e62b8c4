/// Which front-end classes render a widget model: the model and view names
/// with their modules and module versions, as the `_model_*` and `_view_*`
/// members of its state.
///
/// The standard types here are those that the html-manager shipped with
/// py-shinywidgets 0.8.2 registers (`@jupyter-widgets/html-manager` 0.20.0,
/// the ipywidgets 7 line). Names and versions were read from that wheel's
/// `shinywidgets/static/libembed-amd.js`: `JUPYTER_WIDGETS_VERSION = "1.2.0"`
/// and `JUPYTER_CONTROLS_VERSION = "1.5.0"` (its `PROTOCOL_VERSION` is
/// "2.0.0"), and each class's `defaults()` for its `_model_name` and
/// `_view_name`. Style models are controls models with the base module's
/// `StyleView`, and `LayoutModel` is all base, as ipywidgets 7 writes them
/// (docs: /work/shared/SHINYWIDGETS.md has the table and the console errors
/// seen when they were wrong).
public struct WidgetModelType: Hashable, Sendable {
    /// `_model_module`, e.g. `@jupyter-widgets/controls`.
    public var modelModule: String
    /// `_model_module_version`, e.g. `1.5.0`.
    public var modelModuleVersion: String
    /// `_model_name`, e.g. `IntSliderModel`.
    public var modelName: String
    /// `_view_module`.
    public var viewModule: String
    /// `_view_module_version`.
    public var viewModuleVersion: String
    /// `_view_name`, e.g. `IntSliderView`.
    public var viewName: String

    /// A model type; see the standard ones below.
    public init(modelModule: String, modelModuleVersion: String, modelName: String,
                viewModule: String, viewModuleVersion: String, viewName: String) {
        self.modelModule = modelModule
        self.modelModuleVersion = modelModuleVersion
        self.modelName = modelName
        self.viewModule = viewModule
        self.viewModuleVersion = viewModuleVersion
        self.viewName = viewName
    }

    /// The six `_model_*`/`_view_*` members, plus `_view_count: null` (as
    /// ipywidgets 7 sends it: views are not counted).
    public var identity: WidgetState {
        [
            "_model_module": .string(modelModule),
            "_model_module_version": .string(modelModuleVersion),
            "_model_name": .string(modelName),
            "_view_module": .string(viewModule),
            "_view_module_version": .string(viewModuleVersion),
            "_view_name": .string(viewName),
            "_view_count": .null,
        ]
    }

    // MARK: Modules of the shipped html-manager

    /// `@jupyter-widgets/base`.
    public static let baseModule = "@jupyter-widgets/base"
    /// The base module's version the html-manager registers (`JUPYTER_WIDGETS_VERSION`).
    public static let baseVersion = "1.2.0"
    /// `@jupyter-widgets/controls`.
    public static let controlsModule = "@jupyter-widgets/controls"
    /// The controls module's version the html-manager registers (`JUPYTER_CONTROLS_VERSION`).
    public static let controlsVersion = "1.5.0"

    /// A controls model with a controls view, e.g. `control("IntSlider")`:
    /// `IntSliderModel` and `IntSliderView`.
    public static func control(_ name: String) -> WidgetModelType {
        WidgetModelType(modelModule: controlsModule, modelModuleVersion: controlsVersion, modelName: name + "Model",
                        viewModule: controlsModule, viewModuleVersion: controlsVersion, viewName: name + "View")
    }

    /// A controls style model (e.g. `SliderStyleModel`) with the base `StyleView`.
    public static func style(_ modelName: String) -> WidgetModelType {
        WidgetModelType(modelModule: controlsModule, modelModuleVersion: controlsVersion, modelName: modelName,
                        viewModule: baseModule, viewModuleVersion: baseVersion, viewName: "StyleView")
    }

    /// `LayoutModel` / `LayoutView`, both in the base module.
    public static let layout = WidgetModelType(modelModule: baseModule, modelModuleVersion: baseVersion,
                                               modelName: "LayoutModel", viewModule: baseModule,
                                               viewModuleVersion: baseVersion, viewName: "LayoutView")
    /// `DescriptionStyleModel` (Label, HTML and other described controls).
    public static let descriptionStyle = style("DescriptionStyleModel")
    /// `SliderStyleModel` (the sliders).
    public static let sliderStyle = style("SliderStyleModel")
    /// `ButtonStyleModel`.
    public static let buttonStyle = style("ButtonStyleModel")
    /// `IntSliderModel` / `IntSliderView`.
    public static let intSlider = control("IntSlider")
    /// `LabelModel` / `LabelView`.
    public static let label = control("Label")
    /// `HTMLModel` / `HTMLView`.
    public static let html = control("HTML")
    /// `ButtonModel` / `ButtonView`.
    public static let button = control("Button")
    /// `ImageModel` / `ImageView`.
    public static let image = control("Image")
    /// `VBoxModel` / `VBoxView`.
    public static let vbox = control("VBox")
    /// `HBoxModel` / `HBoxView`.
    public static let hbox = control("HBox")
}
