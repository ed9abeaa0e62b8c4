import Foundation
import XCTest

/// `comm_plugin.h` is self-contained and compiles cleanly as C11 and as C++
/// with every warning an error, and its layout asserts catch a moved field.
final class HeaderTests: XCTestCase {
    private func compile(_ compiler: String, _ language: [String], source: String,
                         include: String = TestSupport.includeDirectory) throws -> (status: Int32, output: String) {
        let dir = try TestSupport.temporaryDirectory(self)
        let file = dir + "/use_header.c"
        try source.write(toFile: file, atomically: true, encoding: .utf8)
        return try TestSupport.run(compiler, language + ["-Wall", "-Wextra", "-Werror", "-pedantic", "-I", include,
                                                         "-fsyntax-only", file])
    }

    /// Uses every type and macro, and initializes every versioned struct
    /// field by field in declaration order (C++11 has no designated
    /// initializers), so unused-declaration and missing-initializer warnings
    /// and the layout asserts all get their chance.
    private let source = """
    #include "comm_plugin.h"
    static const commhost_status all_statuses[] = {
        COMMHOST_OK, COMMHOST_EFAIL, COMMHOST_EINVAL, COMMHOST_EJSON, COMMHOST_ECLOSED, COMMHOST_ENOMEM,
        COMMHOST_EUNSUPPORTED, COMMHOST_ELIMIT, COMMHOST_EEXISTS, COMMHOST_ESTATE, COMMHOST_EAGAIN,
        COMMHOST_EHANDLE, COMMHOST_ECANCELED };
    static const commhost_close_cause close_causes[] = {
        COMMHOST_CLOSE_CLIENT, COMMHOST_CLOSE_PLUGIN, COMMHOST_CLOSE_SESSION_ENDED, COMMHOST_CLOSE_SHUTDOWN,
        COMMHOST_CLOSE_REMOVED, COMMHOST_CLOSE_RELOAD };
    static const commhost_session_cause session_causes[] = {
        COMMHOST_SESSION_STARTED, COMMHOST_SESSION_RESUMED, COMMHOST_SESSION_ENDED, COMMHOST_SESSION_SHUTDOWN,
        COMMHOST_SESSION_HANDED_OFF, COMMHOST_SESSION_REMOVED };
    static const commhost_log_level levels[] = {
        COMMHOST_LOG_DEBUG, COMMHOST_LOG_INFO, COMMHOST_LOG_WARNING, COMMHOST_LOG_ERROR };

    static commhost_status write_nothing(const commhost_writer *writer, const uint8_t *ptr, size_t len) {
        (void)writer; (void)ptr; (void)len;
        return COMMHOST_OK;
    }
    static void task(void *data, commhost_status status) { (void)data; (void)status; }
    static commhost_status open_nothing(const commhost_handler *handler, void *library, commhost_comm *comm,
                                        const commhost_message *message, void **out_instance) {
        (void)handler; (void)library; (void)comm; (void)message;
        *out_instance = 0;
        return COMMHOST_OK;
    }
    static commhost_status restore_nothing(const commhost_handler *handler, void *library, commhost_comm *comm,
                                           commhost_str from_version, commhost_bytes state, void **out_instance) {
        (void)handler; (void)library; (void)comm; (void)from_version; (void)state;
        *out_instance = 0;
        return COMMHOST_ESTATE;
    }

    static const commhost_handler handler = { sizeof(commhost_handler), "n", 0, open_nothing, 0, 0, 0, restore_nothing };
    static const commhost_handler *const handlers[1] = { &handler };
    static const commhost_plugin plugin = { sizeof(commhost_plugin), COMMHOST_ABI_MAJOR, COMMHOST_ABI_MINOR,
                                            COMMHOST_PLUGIN_CONCURRENT, "n", "1", 0, 0, handlers, 1, 0, 0, 0 };

    static commhost_status entry_check(void) {
        commhost_bytes buffer = { 0, 0 };
        commhost_message m = { sizeof(commhost_message), { "{}", 2 }, { 0, 0 }, &buffer, 1 };
        commhost_writer w = { sizeof(commhost_writer), write_nothing, 0 };
        commhost_host h = { sizeof(commhost_host), COMMHOST_ABI_MAJOR, COMMHOST_ABI_MINOR, 0, 0,
                            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
        commhost_timer timer = 0;
        commhost_task_fn fn = task;
        commhost_comm *comm = 0;
        commhost_session *session = 0;
        commhost_plugin_entry_fn entry = 0;
        fn(&timer, COMMHOST_OK);
        bool fields = COMMHOST_HAS_FIELD(&plugin, commhost_plugin, session_writable)
            && COMMHOST_HAS_FIELD(&m, commhost_message, buffer_count) && COMMHOST_HAS_FIELD(&w, commhost_writer, host_data)
            && COMMHOST_HAS_FIELD(&h, commhost_host, timer_cancel) && COMMHOST_HAS_FIELD(&handler, commhost_handler, restore);
        bool sizes = sizeof(commhost_message) == COMMHOST_MESSAGE_SIZE_1_0 && sizeof(commhost_handler) == COMMHOST_HANDLER_SIZE_1_0
            && sizeof(commhost_plugin) == COMMHOST_PLUGIN_SIZE_1_0 && sizeof(commhost_host) == COMMHOST_HOST_SIZE_1_0
            && sizeof(commhost_writer) == COMMHOST_WRITER_SIZE_1_0;
        bool counts = sizeof all_statuses / sizeof all_statuses[0] == 13 && sizeof close_causes / sizeof close_causes[0] == 6
            && sizeof session_causes / sizeof session_causes[0] == 6 && sizeof levels / sizeof levels[0] == 4;
        return fields && sizes && counts && comm == 0 && session == 0 && entry == 0
            && w.write(&w, 0, 0) == COMMHOST_OK && COMMHOST_ABI_COMPATIBLE(1, 0, plugin.abi_major, plugin.abi_minor)
            && handler.open != 0 && COMMHOST_ENTRY_SYMBOL[0] == 'c' ? COMMHOST_OK : COMMHOST_EFAIL;
    }
    COMMHOST_DECLARE_ENTRY { return entry_check() == COMMHOST_OK ? &plugin : 0; }
    """

    func testHeaderCompilesAsC11WithWarningsAsErrors() throws {
        let result = try compile("/usr/bin/cc", ["-x", "c", "-std=c11"], source: source)
        XCTAssertEqual(result.status, 0, result.output)
    }

    func testHeaderCompilesAsCPlusPlusWithWarningsAsErrors() throws {
        for standard in ["-std=c++11", "-std=c++17"] {
            let result = try compile("/usr/bin/c++", ["-x", "c++", standard], source: source)
            XCTAssertEqual(result.status, 0, "\(standard): \(result.output)")
        }
    }

    func testAStaticAssertOnALayoutFires() throws {
        let result = try compile("/usr/bin/cc", ["-x", "c", "-std=c11"], source: """
        #include "comm_plugin.h"
        COMMHOST_STATIC_ASSERT(offsetof(commhost_handler, restore) == 0, "moved");
        """)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("moved"), result.output)
    }

    func testHeaderLayoutAssertsCatchAFieldInsertedInTheMiddleOfAStruct() throws {
        // The header's own asserts are live: a copy of it with one field
        // inserted before the end of a versioned struct must not compile,
        // and the failing assert names the field that moved.
        let header = try String(contentsOfFile: TestSupport.includeDirectory + "/comm_plugin.h", encoding: .utf8)
        let insertions: [(after: String, fires: String)] = [
            ("    commhost_str metadata;\n", "commhost_message.buffer_count"),
            ("    uint32_t reserved;\n", "commhost_host.host_data"),
            ("    commhost_session *(*comm_session)(const struct commhost_host *host, commhost_comm *comm);\n",
             "commhost_host.timer_cancel"),
            ("    void *handler_data;\n", "commhost_handler.open"),
            ("    uint32_t flags;\n", "commhost_plugin.name"),
        ]
        for insertion in insertions {
            XCTAssertEqual(header.components(separatedBy: insertion.after).count, 2, "one place to insert: \(insertion.after)")
            let broken = header.replacingOccurrences(of: insertion.after, with: insertion.after + "    void *inserted;\n")
            let dir = try TestSupport.temporaryDirectory(self)
            try broken.write(toFile: dir + "/comm_plugin.h", atomically: true, encoding: .utf8)
            let result = try compile("/usr/bin/cc", ["-x", "c", "-std=c11"], source: "#include \"comm_plugin.h\"\n", include: dir)
            XCTAssertNotEqual(result.status, 0, "inserted after \(insertion.after)")
            XCTAssertTrue(result.output.contains(insertion.fires), "expected \(insertion.fires) to fire: \(result.output)")
        }
    }
}
