import Glibc

/// `commhost new NAME --lang c|swift|rust [--dir DIR]`: writes a plugin
/// project that builds as it is, from the commhost source tree this
/// executable belongs to (found by walking up from the executable, or given):
/// the source with one counting handler named NAME, what builds it, a
/// `manifest.json` that serves it, a `try.script` for `commhost try`, and a
/// README. The C project carries its own copies of `comm_plugin.h` and
/// `comm_json.h`; the Swift package depends on the tree's CommPluginKit by
/// path; the Rust crate is `examples/rust-plugin`'s shape, renamed.
public enum NewProject {
    public enum Language: String, CaseIterable, Sendable {
        case c, swift, rust
    }

    /// Why a project could not be written.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Writes the project; returns the lines to print (what was written and what to run next).
    public static func write(name: String, language: Language, directory: String, sourceTree: String) throws(Failure) -> [String] {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.count <= 40,
              name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) else {
            throw Failure(description: "NAME must be a lowercase letter then letters, digits or _ (at most 40), as it names a C function prefix and the library: \"\(name)\" is not")
        }
        guard access(directory, F_OK) != 0 else {
            throw Failure(description: "\(directory) already exists; choose another --dir or remove it")
        }
        let absolute = directory.hasPrefix("/") ? directory : FileSystem.currentDirectory() + "/" + directory
        var files: [(String, String)] = []
        let type = name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        let script = "# commhost try LIBRARY try.script\nopen\nmsg {\"method\":\"increment\",\"by\":2}\nmsg {\"method\":\"increment\"}\nmsg {\"by\":\"two\"}\nclose\n"
        let build: String, library: String, pluginPath: String
        switch language {
        case .c:
            for header in ["comm_plugin.h", "comm_json.h"] {
                guard case .success(let bytes) = FileSystem.readFile(sourceTree + "/Sources/CommPluginAPI/include/" + header) else {
                    throw Failure(description: "cannot read \(header) in the commhost source tree \(sourceTree)")
                }
                files.append(("include/" + header, String(decoding: bytes, as: UTF8.self)))
            }
            files.append(("\(name).c", cSource(name)))
            files.append(("Makefile", "# Builds lib\(name).so with the headers in include/.\nlib\(name).so: \(name).c include/comm_plugin.h include/comm_json.h\n\tcc -std=c11 -Wall -Wextra -O2 -shared -fPIC -fvisibility=hidden -Iinclude -o $@ \(name).c\n\nclean:\n\trm -f lib\(name).so\n"))
            build = "make"
            library = "lib\(name).so"
            pluginPath = absolute
        case .swift:
            let kit = sourceTree
            let identity = String(kit.split(separator: "/").last ?? "commhost").lowercased()
            files.append(("Package.swift", """
                // swift-tools-version:6.0
                import PackageDescription

                let package = Package(
                    name: "\(type)",
                    products: [.library(name: "\(type)", type: .dynamic, targets: ["\(type)"])],
                    dependencies: [.package(path: \(JSONText.string(kit)))],
                    targets: [
                        .target(name: "\(type)", dependencies: [.product(name: "CommPluginKit", package: \(JSONText.string(identity)))]),
                    ],
                    swiftLanguageModes: [.v6]
                )

                """))
            files.append(("Sources/\(type)/\(type).swift", swiftSource(name, type)))
            files.append((".gitignore", ".build/\nPackage.resolved\n"))
            build = "swift build"
            library = "lib\(type).so"
            pluginPath = absolute + "/.build/debug"
        case .rust:
            guard case .success(let bytes) = FileSystem.readFile(sourceTree + "/examples/rust-plugin/src/lib.rs") else {
                throw Failure(description: "cannot read examples/rust-plugin/src/lib.rs in the commhost source tree \(sourceTree)")
            }
            let source = String(decoding: bytes, as: UTF8.self)
                .replacingAll("tally_", with: "\(name)_").replacingAll("TALLY", with: name.uppercased())
                .replacingAll("b\"tally\\0\"", with: "b\"\(name)\\0\"").replacingAll("tally refuses", with: "\(name) refuses")
                .replacingAll("//! tally:", with: "//! \(name):").replacingAll("Handler \"tally\"", with: "Handler \"\(name)\"")
            files.append(("src/lib.rs", source))
            files.append(("Cargo.toml", """
                [package]
                name = "\(name)"
                version = "1.0.0"
                edition = "2021"
                publish = false

                [lib]
                name = "\(name)"
                crate-type = ["cdylib"]

                [profile.release]
                panic = "abort"

                """))
            files.append((".gitignore", "target/\n"))
            build = "cargo build --release"
            library = "lib\(name).so"
            pluginPath = absolute + "/target/release"
        }
        files.append(("manifest.json", """
            {
              "version": 1,
              "plugin_paths": [\(JSONText.string(pluginPath))],
              "targets": [
                {"target_name": \(JSONText.string(name)), "library": \(JSONText.string(library)), "handler": \(JSONText.string(name))}
              ]
            }

            """))
        files.append(("try.script", script))
        let behaviour = language == .rust
            ? "count per comm: each `comm_msg` is answered with `{\"count\":N,\"got\":DATA}`, DATA being\nits own `data`; `{\"fail\":true}` is refused with an error text."
            : "count per comm: `{\"method\":\"increment\",\"by\":N}` adds N (default 1) and is\nanswered with `{\"method\":\"update\",\"state\":{\"value\":COUNT}}`; a `by` that is\nnot an integer is refused with an error text."
        let readme = """
            # \(name)

            A commhost plugin (\(language.rawValue)) with one handler, `\(name)`, that keeps a
            \(behaviour)

            ```
            \(build)
            commhost inspect --check \(pluginPath)/\(library)
            commhost try \(pluginPath)/\(library) try.script
            commhost serve --manifest manifest.json
            ```

            `manifest.json` binds the target `\(name)` to the library; copy its target into
            your host's manifest. See docs/PLUGINS.md in the commhost tree.

            """
        files.append(("README.md", readme))
        for (path, text) in files {
            let full = absolute + "/" + path
            do {
                try FileSystem.makeDirectories(FileSystem.directory(of: full))
                var bytes = Array(text.utf8)
                let fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw Errno.current }
                defer { close(fd) }
                try bytes.withUnsafeMutableBytes { try FileSystem.writeAll(fd, UnsafeRawBufferPointer($0)) }
            } catch {
                throw Failure(description: "cannot write \(full): \(error)")
            }
        }
        return ["wrote \(language.rawValue) plugin \(name) in \(absolute):"] + files.map { "  \($0.0)" }
            + ["next: cd \(directory) && \(build) && commhost try \(pluginPath)/\(library) try.script"]
    }

    /// The commhost source tree above `executableDirectory` (the folder with
    /// `Sources/CommPluginAPI/include/comm_plugin.h`), if any.
    public static func sourceTree(above executableDirectory: String) -> String? {
        var directory = executableDirectory
        while directory != "/" && !directory.isEmpty {
            if access(directory + "/Sources/CommPluginAPI/include/comm_plugin.h", R_OK) == 0 { return directory }
            directory = FileSystem.directory(of: directory)
        }
        return nil
    }

    private static func cSource(_ name: String) -> String {
        """
        /*
         * \(name): a commhost plugin. Handler "\(name)" keeps a count per comm:
         * {"method":"increment","by":N} adds N (default 1) and is answered with
         * {"method":"update","state":{"value":COUNT}}. Reads and writes JSON with
         * comm_json.h. Build with `make`.
         */
        #include "comm_plugin.h"
        #include "comm_json.h"
        #include <stdlib.h>

        /* The host's table, from init; valid until the library is unloaded. */
        static const commhost_host *host;

        static commhost_status \(name)_init(const commhost_host *api, commhost_str config, void **out_library) {
            (void)config;
            host = api;
            *out_library = NULL;
            return COMMHOST_OK;
        }

        /* The instance: the comm's count, freed in close. */
        static commhost_status \(name)_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                           const commhost_message *message, void **out_instance) {
            (void)handler; (void)library; (void)comm; (void)message;
            int64_t *count = calloc(1, sizeof *count);
            if (!count) return COMMHOST_ENOMEM;
            *out_instance = count;
            return COMMHOST_OK;
        }

        static commhost_status \(name)_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                              const commhost_message *message) {
            (void)handler;
            int64_t *count = instance, by = 1;
            commhost_str value;
            if (commhost_json_find(message->data, "by", &value) == COMMHOST_OK && commhost_json_int64_value(value, &by) != COMMHOST_OK) {
                static const char why[] = "\\"by\\" must be an integer";
                host->set_error(host, (commhost_str){ why, sizeof why - 1 });
                return COMMHOST_EINVAL;
            }
            *count += by;
            char text[128];
            commhost_json_writer w = commhost_json_writer_init(text, sizeof text);
            commhost_json_begin_object(&w);
            commhost_json_key(&w, "method");
            commhost_json_string(&w, "update", 6);
            commhost_json_key(&w, "state");
            commhost_json_begin_object(&w);
            commhost_json_key(&w, "value");
            commhost_json_int64(&w, *count);
            commhost_json_end_object(&w);
            commhost_json_end_object(&w);
            commhost_message reply = { .struct_size = sizeof reply };
            commhost_status status = commhost_json_finish(&w, &reply.data);
            return status == COMMHOST_OK ? host->send(host, comm, &reply) : status;
        }

        static void \(name)_close(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                 const commhost_message *message, commhost_close_cause cause) {
            (void)handler; (void)comm; (void)message; (void)cause;
            free(instance);
        }

        static const commhost_handler \(name)_handler = {
            .struct_size = sizeof(commhost_handler),
            .name = "\(name)",
            .open = \(name)_open,
            .message = \(name)_message,
            .close = \(name)_close,
        };

        static const commhost_handler *const \(name)_handlers[] = { &\(name)_handler };

        static const commhost_plugin \(name)_plugin = {
            .struct_size = sizeof(commhost_plugin),
            .abi_major = COMMHOST_ABI_MAJOR,
            .abi_minor = COMMHOST_ABI_MINOR,
            .name = "\(name)",
            .version = "0.1.0",
            .init = \(name)_init,
            .handlers = \(name)_handlers,
            .handler_count = 1,
        };

        COMMHOST_DECLARE_ENTRY { return &\(name)_plugin; }

        """
    }

    private static func swiftSource(_ name: String, _ type: String) -> String {
        """
        import CommPluginKit

        /// One comm of the `\(name)` handler: a count, `{"method":"increment","by":N}`
        /// adds N (default 1) and is answered with `{"method":"update","state":{"value":COUNT}}`.
        final class \(type): CommHandler {
            static let handlerName = "\(name)"
            private let comm: Comm
            private var count = 0

            init(comm: Comm, open message: CommMessage) throws {
                self.comm = comm
            }

            func receive(_ message: CommMessage) throws {
                struct Increment: Decodable { var by: Int? }
                let increment: Increment
                do {
                    increment = try message.decode(Increment.self)
                } catch {
                    throw PluginError(.invalidArgument, "\\"by\\" must be an integer")
                }
                count += increment.by ?? 1
                try comm.send(json: Update(state: Update.State(value: count)))
            }

            /// The reply: `{"method":"update","state":{"value":COUNT}}`.
            struct Update: Encodable {
                struct State: Encodable { var value: Int }
                var method = "update"
                var state: State
            }
        }

        /// The library's entry: its descriptor, with the handler.
        @c(commhost_plugin_entry)
        public func commhostPluginEntry() -> UnsafeRawPointer? {
            PluginExport.descriptor(name: "\(name)", version: "0.1.0", handlers: [\(type).self])
        }

        """
    }
}

private extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        var result = "", rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
