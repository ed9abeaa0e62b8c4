import Foundation
import Synchronization
import XCTest

/// CommPluginKit's widget-protocol helpers (Sources/CommPluginKit/Widgets)
/// through the real host: a test plugin compiled here opens a layout and a
/// model whose state has binary leaves at the top, inside an object and
/// inside an array, reads its own comm_open back (`WidgetState(opening:)`),
/// applies updates with `applying`, answers request_state with
/// `sendUpdate`, and echoes custom messages with `sendCustom`.
final class WidgetProtocolTests: XCTestCase {
    private static let built = Mutex<String?>(nil)

    /// The test plugin's source: handler "mirror".
    private static let source = #"""
        import CommPluginKit

        final class MirrorLibrary: CommLibrary {
            init(host: PluginHost) throws {}
            func sessionStarted(_ session: Session, cause: SessionCause) throws {
                guard cause == .started else { return }
                let layout = try session.openWidget(Mirror.self, .layout(["width": "50%"]))
                let model = Widget(.control("Mirror"), state: [
                    "layout": layout.value, "value": .bytes([1, 2, 3]),
                    "data": ["arr": [.bytes([4]), 5, .bytes([6, 7])], "name": "n"],
                ])
                try session.openWidget(Mirror.self, model, id: "mirror", metadata: ["extra": "yes"])
            }
        }

        final class Mirror: CommHandler {
            static let handlerName = "mirror"
            let comm: Comm
            var widget: WidgetState
            init(comm: Comm, open message: CommMessage) throws {
                self.comm = comm
                widget = try WidgetState(opening: message)
            }
            func receive(_ message: CommMessage) throws {
                switch try WidgetMessage(message) {
                case .update(let change): widget = try widget.applying(change)
                case .requestState: try comm.sendUpdate(widget)
                case .custom(let content, let buffers): try comm.sendCustom(["echo": content], buffers: buffers)
                }
            }
        }

        @c(commhost_plugin_entry)
        public func commhostPluginEntry() -> UnsafeRawPointer? {
            PluginExport.descriptor(name: "mirror", version: "1.0.0", library: MirrorLibrary.self, handlers: [Mirror.self])
        }
        """#

    /// The folder holding the compiled `libmirror.so` (compiled once per test process).
    private static func pluginDirectory() throws -> String {
        try built.withLock { path in
            if let path { return path }
            let directory = NSTemporaryDirectory() + "commhost-widget-mirror-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            try source.write(toFile: directory + "/Mirror.swift", atomically: true, encoding: .utf8)
            try TestSupport.compileSwiftPlugin(source: directory + "/Mirror.swift", output: directory + "/libmirror.so",
                                               moduleName: "Mirror")
            path = directory
            return directory
        }
    }

    override class func tearDown() {
        built.withLock { path in
            if let path { try? FileManager.default.removeItem(atPath: path) }
            path = nil
        }
        super.tearDown()
    }

    private func serve() throws -> (ServeHarness, layout: [String: Any], mirror: [String: Any]) {
        let dir = try TestSupport.temporaryDirectory(self)
        let manifest = """
        {"version": 1, "plugin_paths": [\(Frame.quoted(try Self.pluginDirectory()))],
         "targets": [{"target_name": "mirror", "library": "libmirror.so", "handler": "mirror"}]}
        """
        try manifest.write(toFile: "\(dir)/manifest.json", atomically: true, encoding: .utf8)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", "\(dir)/manifest.json"])
        let layout = try host.nextFrame(), mirror = try host.nextFrame()
        assertFrame(layout, "comm_open")
        assertFrame(mirror, "comm_open", comm: "mirror")
        return (host, layout, mirror)
    }

    /// The mirror's whole state, by request_state: (data, buffers as base64).
    private func requestState(_ host: ServeHarness) throws -> (data: [String: Any], buffers: Any?) {
        host.send(Frame.msg("mirror", data: #"{"method":"request_state"}"#))
        let reply = try host.nextFrame()
        assertFrame(reply, "comm_msg", comm: "mirror")
        return (reply.data ?? [:], reply["buffers"])
    }

    func testOpenSendsStateAndBufferPathsWithBinaryLeavesMovedIntoBuffersAndTheProtocolVersion() throws {
        let (host, layout, mirror) = try serve()
        XCTAssertEqual(layout.content["target_name"] as? String, "jupyter.widget")
        assertJSON(layout["metadata"], #"{"version":"2.1.0"}"#)
        let layoutState = try XCTUnwrap(layout.data?["state"] as? [String: Any])
        XCTAssertEqual(layoutState["_model_name"] as? String, "LayoutModel")
        XCTAssertEqual(layoutState["width"] as? String, "50%")
        XCTAssertTrue(layoutState["height"] is NSNull)
        assertJSON(layout.data?["buffer_paths"], "[]")

        assertJSON(mirror["metadata"], #"{"extra":"yes","version":"2.1.0"}"#, "extra members beside the version")
        let state = try XCTUnwrap(mirror.data?["state"] as? [String: Any])
        XCTAssertNil(state["value"], "a binary member of an object is left out")
        assertJSON(state["data"], #"{"arr":[null,5,null],"name":"n"}"#, "a binary item of an array becomes null")
        XCTAssertEqual(state["layout"] as? String, "IPY_MODEL_" + (layout.commID ?? "?"), "the layout, opened first")
        XCTAssertEqual(state["_model_name"] as? String, "MirrorModel")
        XCTAssertEqual(state["_view_module_version"] as? String, "1.5.0")
        assertJSON(mirror.data?["buffer_paths"], #"[["data","arr",0],["data","arr",2],["value"]]"#)
        assertJSON(mirror["buffers"], #"["BA==","Bgc=","AQID"]"#, "[4], [6,7], [1,2,3] in the order of their paths")
        host.finish()
    }

    func testStateReadBackFromTheOpenAndSentAsAnUpdateIsTheOpenStateBuffersAndAll() throws {
        let (host, _, mirror) = try serve()
        let (data, buffers) = try requestState(host)
        XCTAssertEqual(data["method"] as? String, "update")
        assertJSON(data["state"], ServeHarness.text(mirror.data?["state"] ?? [:]))
        assertJSON(data["buffer_paths"], ServeHarness.text(mirror.data?["buffer_paths"] ?? []))
        assertJSON(buffers, ServeHarness.text(mirror["buffers"] ?? []))
        host.finish()
    }

    func testAnIncomingUpdatePutsItsBuffersBackAtTheirPaths() throws {
        let (host, _, _) = try serve()
        host.send(Frame.msg("mirror", data: #"{"method":"update","state":{},"buffer_paths":[["value"]]}"#,
                            buffers: #"["CQk="]"#))
        host.send(Frame.msg("mirror", data: #"{"method":"update","state":{"data":{"arr":[9,null],"name":"m"}},"buffer_paths":[["data","arr",1]]}"#,
                            buffers: #"["CA=="]"#))
        let (data, buffers) = try requestState(host)
        let state = try XCTUnwrap(data["state"] as? [String: Any])
        assertJSON(state["data"], #"{"arr":[9,null],"name":"m"}"#)
        XCTAssertNil(state["value"])
        assertJSON(data["buffer_paths"], #"[["data","arr",1],["value"]]"#)
        assertJSON(buffers, #"["CA==","CQk="]"#, "[8] inside the array, [9,9] at the top")
        host.finish()
    }

    func testBufferPathsAndUpdatesThatDoNotFitAreRefusedWithWhereAndNothingIsApplied() throws {
        let (host, _, mirror) = try serve()
        let cases: [(data: String, buffers: String, message: String)] = [
            (#"{"method":"update","state":{"data":{}},"buffer_paths":[["data","nope","x"]]}"#, #"["AA=="]"#,
             #"buffer_paths[0] ["data","nope","x"] does not fit the state: there is no member "nope""#),
            (#"{"method":"update","state":{"data":{"arr":[1]}},"buffer_paths":[["data","arr",5]]}"#, #"["AA=="]"#,
             "index 5 is outside an array of 1"),
            (#"{"method":"update","state":{"data":{"name":"n"}},"buffer_paths":[["data","name",0]]}"#, #"["AA=="]"#,
             "index 0 is asked of a string, not an array"),
            (#"{"method":"update","state":{},"buffer_paths":[[true]]}"#, #"["AA=="]"#,
             "a path step is a key (string) or an index (integer)"),
            (#"{"method":"update","state":{},"buffer_paths":[[]]}"#, #"["AA=="]"#, "buffer_paths[0] is empty"),
            (#"{"method":"update","state":{},"buffer_paths":"value"}"#, "[]", #""buffer_paths" must be an array"#),
            (#"{"method":"update","state":{},"buffer_paths":[]}"#, #"["AA=="]"#, "0 buffer_paths but 1 buffers"),
            (#"{"method":"update","state":{"value":1}}"#, "[]", #"sets field "value", which holds binary data, to the integer 1"#),
            (#"{"method":"update","state":{"data":{},"ghost":1}}"#, "[]", #"unknown field "ghost""#),
        ]
        for item in cases {
            host.send(Frame.msg("mirror", data: item.data, buffers: item.buffers))
            let error = try host.nextFrame()
            assertFrame(error, "error")
            let text = error.content["evalue"] as? String ?? ""
            XCTAssertTrue(text.contains(item.message), "for \(item.data): \(text)")
        }
        let (data, buffers) = try requestState(host)
        assertJSON(data["state"], ServeHarness.text(mirror.data?["state"] ?? [:]), "no refused update was applied, even in part")
        assertJSON(buffers, ServeHarness.text(mirror["buffers"] ?? []))
        host.finish()
    }

    func testCustomContentAndItsBuffersComeAndGoAsCustomMessages() throws {
        let (host, _, _) = try serve()
        host.send(Frame.msg("mirror", data: #"{"method":"custom","content":{"k":[1,"x",2.5,null,true]}}"#, buffers: #"["AQID",""]"#))
        let reply = try host.nextFrame()
        assertFrame(reply, "comm_msg", comm: "mirror")
        assertJSON(reply.data, #"{"method":"custom","content":{"echo":{"k":[1,"x",2.5,null,true]}}}"#)
        assertJSON(reply["buffers"], #"["AQID",""]"#)
        host.finish()
    }
}
