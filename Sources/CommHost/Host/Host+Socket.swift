import Glibc

extension Host {
    /// Serves on a Unix-domain socket at `path` (created with permissions
    /// `mode`), one session per connection, until SIGINT or SIGTERM; then
    /// stops accepting, closes every comm (cause: shutdown), gives clients a
    /// bounded time to take what was already sent, runs every library's
    /// deinit, removes the socket file and returns 0. Returns 1 when the
    /// manifest or a library is refused, or the socket cannot be created
    /// (a live host already listens there, or the path holds something else).
    public static func serveSocket(_ options: ServeOptions, path: String, mode: mode_t) -> Int32 {
        HostSignals.block()
        guard let serving = startServing(options) else { return 1 }
        let logger = serving.logger
        let server: SocketServer
        do {
            server = try SocketServer(path: path, mode: mode, manager: serving.manager, logger: logger)
        } catch {
            logger.error("refusing to serve: \(error)", [("socket", .string(path))])
            serving.finish()
            return 1
        }
        do throws(Errno) {
            try HostSignals.handle([
                SIGINT: { server.stop(reason: "SIGINT") },
                SIGTERM: { server.stop(reason: "SIGTERM") },
                SIGHUP: { serving.reloader.reloadManifest(reason: "SIGHUP") },
            ])
        } catch {
            logger.error("refusing to serve: cannot start the thread that takes signals: \(error)", [("socket", .string(path))])
            server.stop(reason: "no signal thread")
            server.run(shutdownGrace: options.shutdownGraceSeconds)
            serving.finish()
            return 1
        }
        logger.info("serving on a Unix socket", [("socket", .string(path)), ("mode", .string("0" + String(mode, radix: 8))),
                                                 ("manifest", .string(serving.manifest.sourcePath)), ("dialect", .string(options.dialect.rawValue)),
                                                 ("targets", .string(serving.plugins.bindings.keys.sorted().joined(separator: ",")))])
        server.run(shutdownGrace: options.shutdownGraceSeconds)
        serving.finish()
        logger.info("stopped")
        return 0
    }
}
