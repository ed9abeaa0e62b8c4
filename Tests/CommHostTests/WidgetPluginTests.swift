import Foundation
import XCTest

/// The Widgets example plugin (Plugins/Widgets) through the real `commhost
/// serve --dialect shinywidgets`, frame by frame as a Shiny relay would pass
/// them to the browser: the models' comm_opens in dependency order with the
/// html-manager's module table, a slider update redrawing the label and the
/// gauge PNG, the Reset click, request_state, bad input answered with an
/// error while the widgets keep working, and a hot reload that keeps every
/// model's state and runs the new label format.
final class WidgetPluginTests: XCTestCase {
    /// A manifest in a fresh folder serving the built libWidgetsPlugin.so.
    private func serveBuiltPlugin() throws -> ServeHarness {
        let dir = try TestSupport.temporaryDirectory(self)
        let manifest = """
        {"version": 1, "plugin_paths": [\(Frame.quoted(TestSupport.buildDirectory))],
         "targets": [{"target_name": "commhost.widgets", "library": "libWidgetsPlugin.so", "handler": "widget"}]}
        """
        try manifest.write(toFile: "\(dir)/manifest.json", atomically: true, encoding: .utf8)
        return try ServeHarness(self, arguments: ["serve", "--manifest", "\(dir)/manifest.json", "--dialect", "shinywidgets"])
    }

    // MARK: Opening

    func testSessionOpensEveryModelAfterThoseItRefersToWithProtocolVersionAndModuleTableAndTheRootVBoxLast() throws {
        let host = try serveBuiltPlugin()
        let app = try WidgetApp(host)
        XCTAssertEqual(app.opens.map(\.modelName), [
            "LayoutModel", "SliderStyleModel", "IntSliderModel",
            "LayoutModel", "DescriptionStyleModel", "LabelModel",
            "LayoutModel", "ImageModel",
            "LayoutModel", "ButtonStyleModel", "ButtonModel",
            "LayoutModel", "VBoxModel",
        ])
        var opened: [String] = []
        for open in app.opens {
            XCTAssertEqual(open.targetName, "jupyter.widget")
            XCTAssertEqual(open.metadata["version"] as? String, "2.1.0", "metadata of \(open.modelName)")
            let expected = WidgetApp.moduleTable[open.modelName]
            XCTAssertNotNil(expected, "\(open.modelName) is in the table")
            XCTAssertEqual(open.identity, expected, "module table of \(open.modelName)")
            for reference in open.references {
                XCTAssertTrue(opened.contains(reference), "\(open.modelName) refers to \(reference), opened before it")
            }
            opened.append(open.commID)
        }
        for name in ["IntSliderModel", "LabelModel", "ImageModel", "ButtonModel", "VBoxModel"] {
            let open = try app.open(name)
            let layout = try XCTUnwrap(open.state["layout"] as? String)
            XCTAssertEqual(try app.open(id: String(layout.dropFirst("IPY_MODEL_".count))).modelName, "LayoutModel",
                           "\(name)'s layout")
        }
        XCTAssertEqual(try app.modelName(ofReference: app.slider.state["style"]), "SliderStyleModel")
        XCTAssertEqual(try app.modelName(ofReference: app.label.state["style"]), "DescriptionStyleModel")
        XCTAssertEqual(try app.modelName(ofReference: app.button.state["style"]), "ButtonStyleModel")

        let root = try XCTUnwrap(app.opens.last)
        XCTAssertEqual(root.metadata["commhost_root"] as? Bool, true, "the root VBox is marked")
        XCTAssertEqual(app.opens.filter { $0.metadata["commhost_root"] != nil }.count, 1, "only the root is marked")
        XCTAssertEqual(root.state["children"] as? [String],
                       [app.slider, app.label, app.image, app.button].map { "IPY_MODEL_" + $0.commID })

        assertJSON(app.slider.state["value"], "42")
        assertJSON(app.slider.state["min"], "0")
        assertJSON(app.slider.state["max"], "100")
        assertJSON(app.label.state["value"], #""value: 42""#)
        assertJSON(app.button.state["description"], #""Reset""#)
        assertJSON(app.image.state["format"], #""png""#)
        XCTAssertNil(app.image.state["value"], "the picture is not in the JSON")
        assertJSON(app.image.bufferPaths, #"[["value"]]"#)
        XCTAssertEqual(app.image.buffers.count, 1)
        let png = try DecodedPNG(app.image.buffers[0])
        XCTAssertEqual([png.width, png.height], [200, 40])
        XCTAssertEqual(png.barLength, 42 * 196 / 100, "the gauge is drawn for 42")
        for open in app.opens where open.modelName != "ImageModel" {
            XCTAssertEqual(open.buffers.count, 0, "\(open.modelName) has no buffers")
            assertJSON(open.bufferPaths, "[]")
        }
        host.finish()
    }

    // MARK: Updates

    func testSliderUpdateChangesTheLabelTextAndRedrawsTheImage() throws {
        let host = try serveBuiltPlugin()
        let app = try WidgetApp(host)
        let before = try DecodedPNG(app.image.buffers[0])
        host.send(WidgetApp.input(app.slider.commID, #"{"method":"update","state":{"value":7},"buffer_paths":[]}"#))
        let label = try app.nextMessage()
        XCTAssertEqual(label.commID, app.label.commID)
        assertJSON(label.data, #"{"method":"update","state":{"value":"value: 7"},"buffer_paths":[]}"#)
        let image = try app.nextMessage()
        XCTAssertEqual(image.commID, app.image.commID)
        assertJSON(image.data, #"{"method":"update","state":{},"buffer_paths":[["value"]]}"#)
        XCTAssertEqual(image.buffers.count, 1)
        let after = try DecodedPNG(image.buffers[0])
        XCTAssertEqual([after.width, after.height], [200, 40])
        XCTAssertNotEqual(after.pixels, before.pixels, "the picture changed")
        XCTAssertEqual(after.barLength, 7 * 196 / 100, "the gauge is drawn for 7")
        XCTAssertEqual(try host.openCommIDs().count, 13, "nothing else was written, every model is open")
        host.finish()
    }

    func testResetClickSetsTheSliderTheLabelAndTheImageToZero() throws {
        let host = try serveBuiltPlugin()
        let app = try WidgetApp(host)
        host.send(WidgetApp.input(app.slider.commID, #"{"method":"update","state":{"value":90},"buffer_paths":[]}"#))
        _ = try app.nextMessages(2)
        host.send(WidgetApp.input(app.button.commID, #"{"method":"custom","content":{"event":"click"}}"#))
        let (slider, label, image) = try app.nextThree()
        XCTAssertEqual(slider.commID, app.slider.commID)
        assertJSON(slider.data, #"{"method":"update","state":{"value":0},"buffer_paths":[]}"#, "the browser's slider moves")
        XCTAssertEqual(label.commID, app.label.commID)
        assertJSON(label.data, #"{"method":"update","state":{"value":"value: 0"},"buffer_paths":[]}"#)
        XCTAssertEqual(image.commID, app.image.commID)
        XCTAssertEqual(try DecodedPNG(image.buffers[0]).barLength, 0)
        host.finish()
    }

    func testRequestStateIsAnsweredWithTheWholeCurrentState() throws {
        let host = try serveBuiltPlugin()
        let app = try WidgetApp(host)
        host.send(WidgetApp.input(app.slider.commID, #"{"method":"update","state":{"value":55},"buffer_paths":[]}"#))
        _ = try app.nextMessages(2)
        host.send(WidgetApp.input(app.slider.commID, #"{"method":"request_state"}"#))
        let slider = try app.nextMessage()
        XCTAssertEqual(slider.commID, app.slider.commID)
        XCTAssertEqual(slider.data["method"] as? String, "update")
        var expected = app.slider.state
        expected["value"] = 55
        assertJSON(slider.data["state"], ServeHarness.text(expected), "the open state with the new value")

        host.send(WidgetApp.input(app.image.commID, #"{"method":"request_state"}"#))
        let image = try app.nextMessage()
        assertJSON(image.data["state"], ServeHarness.text(app.image.state), "the open state (the picture in a buffer)")
        assertJSON(image.data["buffer_paths"], #"[["value"]]"#)
        XCTAssertEqual(try DecodedPNG(image.buffers[0]).barLength, 55 * 196 / 100)

        host.send(WidgetApp.input(app.opens.last!.commID, #"{"method":"request_state"}"#))
        assertJSON(try app.nextMessage().data["state"], ServeHarness.text(app.opens.last!.state), "the VBox, children and all")
        host.finish()
    }

    // MARK: Bad input

    func testBadInputGetsAnErrorFrameSayingWhatWasWrongAndTheNextValidUpdateStillWorks() throws {
        let host = try serveBuiltPlugin()
        let app = try WidgetApp(host)
        let slider = app.slider.commID, button = app.button.commID
        let cases: [(String, String, String)] = [
            (slider, #"{"method":"update","state":{"value":7.5},"buffer_paths":[]}"#,
             #"sets field "value", which holds an integer, to the number 7.5"#),
            (slider, #"{"method":"update","state":{"value":"7"},"buffer_paths":[]}"#, #"to the string "7""#),
            (slider, #"{"method":"update","state":{"colour":"red"},"buffer_paths":[]}"#,
             #"names the unknown field "colour""#),
            (slider, #"{"method":"update","state":{"value":150},"buffer_paths":[]}"#, "outside its range 0...100"),
            (slider, #"{"method":"update","state":[1]}"#, #"an update needs a "state" object"#),
            (slider, #"{"method":"update","state":{},"buffer_paths":[["value"]]}"#, "1 buffer_paths but 0 buffers"),
            (slider, #"{"state":{"value":1}}"#, #"no "method" string"#),
            (slider, #"{"method":"echo_update","state":{}}"#, #"unknown widget message method "echo_update""#),
            (slider, #"{"method":"custom","content":{"event":"click"}}"#, "IntSliderModel takes no custom messages"),
            (button, #"{"method":"custom","content":{"event":"dblclick"}}"#, #"understands the custom content {"event":"click"}"#),
            (button, #"{"method":"custom"}"#, #"needs a "content" member"#),
        ]
        for (id, data, message) in cases {
            host.send(WidgetApp.input(id, data))
            let error = try host.nextFrame()
            assertFrame(error, "error")
            let text = error.content["evalue"] as? String ?? ""
            XCTAssertTrue(text.contains(message), "for \(data): \(text)")
        }
        // A comm the client opens on the plugin's target is refused: closed, with an error frame.
        host.send(Frame.open("from-client", target: "commhost.widgets"))
        let refusal = try host.nextFrames(2)
        XCTAssertEqual(Set(refusal.map { $0["type"] as? String ?? $0.msgType ?? "" }), ["shinywidgets_comm_close", "error"])
        XCTAssertTrue(refusal.contains { ($0.content["evalue"] as? String)?.contains("a client may not open") == true })
        try host.sync()
        // The log reaches stderr, which another thread than the frames' collects:
        // wait (at most 10 s) until every line has arrived, then check each.
        let expected = cases.map(\.2) + ["a client may not open"]
        var logged: [String] = []
        let deadline = Date(timeIntervalSinceNow: 10)
        repeat {
            logged = host.stderrLines.compactMap { $0["error"] as? String }
            if expected.allSatisfy({ message in logged.contains { $0.contains(message) } }) { break }
            usleep(10_000)
        } while Date() < deadline
        for message in expected {
            XCTAssertTrue(logged.contains { $0.contains(message) }, "the host logged \"\(message)\": \(logged)")
        }

        host.send(WidgetApp.input(slider, #"{"method":"update","state":{"value":3},"buffer_paths":[]}"#))
        let label = try app.nextMessage()
        assertJSON(label.data["state"], #"{"value":"value: 3"}"#, "the widgets still work")
        XCTAssertEqual(try DecodedPNG(try app.nextMessage().buffers[0]).barLength, 3 * 196 / 100)
        host.send(WidgetApp.input(slider, #"{"method":"request_state"}"#))
        assertJSON(try app.nextMessage().data["state"].flatMap { ($0 as? [String: Any])?["value"] }, "3",
                   "no bad update was applied")
        host.finish()
    }

    // MARK: Hot reload

    func testHotReloadKeepsEveryModelsStateAndReferencesAndTheNewCodeShowsTheNewLabelFormat() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        func publish(_ defines: [String]) throws {
            try TestSupport.compileWidgetsPlugin(output: "\(dir)/.libwidgets.so.tmp", defines: defines)
            XCTAssertEqual(rename("\(dir)/.libwidgets.so.tmp", "\(dir)/libwidgets.so"), 0)
        }
        try publish([])
        let manifest = """
        {"version": 1, "plugin_paths": ["."],
         "targets": [{"target_name": "commhost.widgets", "library": "libwidgets.so", "handler": "widget"}],
         "reload": {"watch": true, "debounce_ms": 30}}
        """
        try manifest.write(toFile: "\(dir)/manifest.json", atomically: true, encoding: .utf8)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", "\(dir)/manifest.json", "--dialect", "shinywidgets"])
        let app = try WidgetApp(host)
        try host.waitForLog("watching for reloads")
        host.send(WidgetApp.input(app.slider.commID, #"{"method":"update","state":{"value":63},"buffer_paths":[]}"#))
        assertJSON(try app.nextMessage().data["state"], #"{"value":"value: 63"}"#)
        let picture = try app.nextMessage().buffers[0]

        try publish(["WIDGETS_LABEL_V2"])
        let log = try host.waitForLog("reloaded library")
        XCTAssertEqual(log["handed_off"] as? Int, 13, "every model was handed off")
        let refreshed = try app.nextMessage()
        XCTAssertEqual(refreshed.commID, app.label.commID, "the resumed app redraws its label in the new format")
        assertJSON(refreshed.data["state"], #"{"value":"value = 63"}"#)
        XCTAssertEqual(try host.openCommIDs(), app.opens.map(\.commID).sorted(), "same comms, nothing closed, the picture unchanged")

        host.send(WidgetApp.input(app.slider.commID, #"{"method":"request_state"}"#))
        var slider = app.slider.state
        slider["value"] = 63
        assertJSON(try app.nextMessage().data["state"], ServeHarness.text(slider), "value and layout/style references survived")
        host.send(WidgetApp.input(app.image.commID, #"{"method":"request_state"}"#))
        XCTAssertEqual(try app.nextMessage().buffers, [picture], "the picture survived")
        host.send(WidgetApp.input(app.opens.last!.commID, #"{"method":"request_state"}"#))
        assertJSON(try app.nextMessage().data["state"], ServeHarness.text(app.opens.last!.state), "the VBox's children survived")

        host.send(WidgetApp.input(app.slider.commID, #"{"method":"update","state":{"value":64},"buffer_paths":[]}"#))
        assertJSON(try app.nextMessage().data["state"], #"{"value":"value = 64"}"#, "the new code serves")
        XCTAssertEqual(try DecodedPNG(try app.nextMessage().buffers[0]).barLength, 64 * 196 / 100)
        host.send(WidgetApp.input(app.button.commID, #"{"method":"custom","content":{"event":"click"}}"#))
        let (reset, label, _) = try app.nextThree()
        assertJSON(reset.data["state"], #"{"value":0}"#)
        assertJSON(label.data["state"], #"{"value":"value = 0"}"#)
        host.finish()
    }
}

// MARK: - Reading the app's frames

/// The Widgets app as the relay sees it: the session's 13 comm_opens, read
/// from the shinywidgets frames, and the messages after them.
struct WidgetApp {
    /// One model's comm_open.
    struct Open {
        var commID: String
        var targetName: String
        var state: [String: Any]
        var bufferPaths: Any
        var buffers: [[UInt8]]
        var metadata: [String: Any]

        var modelName: String { state["_model_name"] as? String ?? "" }
        /// `_model_module`, `_model_module_version`, `_view_module`, `_view_module_version`, `_view_name`.
        var identity: [String] {
            ["_model_module", "_model_module_version", "_view_module", "_view_module_version", "_view_name"]
                .map { state[$0] as? String ?? "<missing \($0)>" }
        }
        /// The comm ids of every `IPY_MODEL_` string in the state.
        var references: [String] {
            func collect(_ value: Any) -> [String] {
                switch value {
                case let text as String where text.hasPrefix("IPY_MODEL_"): [String(text.dropFirst("IPY_MODEL_".count))]
                case let items as [Any]: items.flatMap(collect)
                case let members as [String: Any]: members.values.flatMap(collect)
                default: []
                }
            }
            return collect(state)
        }
    }

    /// One comm_msg the host sent.
    struct Message {
        var commID: String
        var data: [String: Any]
        var buffers: [[UInt8]]
    }

    /// The module table of the html-manager shipped with shinywidgets 0.8.2
    /// (as ipywidgets 7 writes it, and as tried in Chromium): model module and
    /// version, view module and version, view name.
    static let moduleTable: [String: [String]] = {
        let base = "@jupyter-widgets/base", controls = "@jupyter-widgets/controls"
        var table = ["LayoutModel": [base, "1.2.0", base, "1.2.0", "LayoutView"]]
        for style in ["SliderStyleModel", "DescriptionStyleModel", "ButtonStyleModel"] {
            table[style] = [controls, "1.5.0", base, "1.2.0", "StyleView"]
        }
        for control in ["IntSlider", "Label", "Image", "Button", "VBox"] {
            table[control + "Model"] = [controls, "1.5.0", controls, "1.5.0", control + "View"]
        }
        return table
    }()

    let host: ServeHarness
    let opens: [Open]

    /// Reads the 13 comm_opens the session starts with.
    init(_ host: ServeHarness, file: StaticString = #filePath, line: UInt = #line) throws {
        self.host = host
        opens = try (0..<13).map { _ in
            let (type, message) = try Self.shiny(host.nextFrame(file: file, line: line))
            XCTAssertEqual(type, "shinywidgets_comm_open", file: file, line: line)
            let content = message["content"] as? [String: Any] ?? [:]
            let data = content["data"] as? [String: Any] ?? [:]
            return Open(commID: content["comm_id"] as? String ?? "", targetName: content["target_name"] as? String ?? "",
                        state: data["state"] as? [String: Any] ?? [:], bufferPaths: data["buffer_paths"] ?? NSNull(),
                        buffers: try Self.buffers(message), metadata: message["metadata"] as? [String: Any] ?? [:])
        }
    }

    func open(_ modelName: String) throws -> Open {
        try XCTUnwrap(opens.first { $0.modelName == modelName }, "no \(modelName) was opened")
    }

    func open(id: String) throws -> Open {
        try XCTUnwrap(opens.first { $0.commID == id }, "no model has comm id \(id)")
    }

    func modelName(ofReference value: Any?) throws -> String {
        let text = try XCTUnwrap(value as? String)
        return try open(id: String(text.dropFirst("IPY_MODEL_".count))).modelName
    }

    var slider: Open { opens[2] }
    var label: Open { opens[5] }
    var image: Open { opens[7] }
    var button: Open { opens[10] }

    /// The next frame, which must be a shinywidgets_comm_msg.
    func nextMessage(file: StaticString = #filePath, line: UInt = #line) throws -> Message {
        let (type, message) = try Self.shiny(host.nextFrame(file: file, line: line))
        XCTAssertEqual(type, "shinywidgets_comm_msg", "\(message)", file: file, line: line)
        let content = message["content"] as? [String: Any] ?? [:]
        return Message(commID: content["comm_id"] as? String ?? "", data: content["data"] as? [String: Any] ?? [:],
                       buffers: try Self.buffers(message))
    }

    func nextMessages(_ count: Int) throws -> [Message] {
        try (0..<count).map { _ in try nextMessage() }
    }

    func nextThree() throws -> (Message, Message, Message) {
        let three = try nextMessages(3)
        return (three[0], three[1], three[2])
    }

    /// What the browser's `shinywidgets_comm_send` input carries for comm `id`.
    static func input(_ id: String, _ data: String) -> String {
        #"{"content":{"comm_id":"\#(id)","data":\#(data)},"metadata":{},"buffers":[],"header":{}}"#
    }

    private static func shiny(_ frame: [String: Any]) throws -> (String, [String: Any]) {
        let type = try XCTUnwrap(frame["type"] as? String, "a shinywidgets frame: \(ServeHarness.text(frame))")
        let text = try XCTUnwrap(frame["message"] as? String)
        return (type, try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]))
    }

    private static func buffers(_ message: [String: Any]) throws -> [[UInt8]] {
        let texts = try XCTUnwrap(message["buffers"] as? [String], "buffers is a list of base64 strings")
        return try texts.map { try XCTUnwrap(Data(base64Encoded: $0).map { Array($0) }, "base64: \($0)") }
    }
}

extension TestSupport {
    /// Compiles the Widgets plugin's sources (every Plugins/Widgets/*.swift)
    /// with `defines` (e.g. `WIDGETS_LABEL_V2`) into a shared library at
    /// `output`, linking the CommPluginKit objects the package built, as
    /// ``compileSwiftPlugin(source:output:moduleName:defines:)`` does for one file.
    static func compileWidgetsPlugin(output: String, defines: [String] = []) throws {
        let sources = repoRoot + "/Plugins/Widgets"
        let files = try FileManager.default.contentsOfDirectory(atPath: sources).filter { $0.hasSuffix(".swift") }.sorted()
        let kit = buildDirectory + "/CommPluginKit.build"
        let kitObjects = try FileManager.default.contentsOfDirectory(atPath: kit)
            .filter { $0.hasSuffix(".swift.o") }.map { kit + "/" + $0 }
        var arguments = ["-emit-library", "-module-name", "Widgets", "-swift-version", "6",
                         "-I", buildDirectory + "/Modules",
                         "-Xcc", "-fmodule-map-file=" + buildDirectory + "/CommPluginAPI.build/module.modulemap",
                         "-o", output] + files.map { sources + "/" + $0 } + kitObjects
        for define in defines { arguments += ["-D", define] }
        let result = try run(try swiftc(), arguments)
        guard result.status == 0 else {
            throw NSError(domain: "swiftc", code: Int(result.status), userInfo: [NSLocalizedDescriptionKey: "swiftc failed: \(result.output)"])
        }
    }
}
