/// One benchmark scenario: measures commhost and its baseline in the same
/// run and returns table rows.
struct Scenario: Sendable {
    var name: String
    var summary: String
    var run: @Sendable (Toolbox, Settings) throws -> [Row]

    /// Every scenario, in table order.
    static let all: [Scenario] = [
        Scenario(name: "dispatch", summary: "in-process: bytes -> wire -> manager -> C echo plugin -> reply bytes", run: DispatchScenario.run),
        Scenario(name: "stdio", summary: "commhost serve through pipes: pipelined throughput, ping-pong latency", run: StdioScenario.run),
        Scenario(name: "socket", summary: "1, 8 and 64 sessions over the Unix socket", run: SocketScenario.run),
        Scenario(name: "isolation", summary: "the C echo served by a worker process beside the same echo in-process", run: IsolationScenario.run),
        Scenario(name: "buffers", summary: "comm_msg with one 1 MiB, then one 64 MiB binary buffer", run: BuffersScenario.run),
        Scenario(name: "reload", summary: "C plugin with 1 000 comms swapped under steady traffic", run: ReloadScenario.run),
        Scenario(name: "comms", summary: "memory per open comm, RSS at idle", run: CommsScenario.run),
        Scenario(name: "startup", summary: "launch to first reply with the default manifest", run: StartupScenario.run),
    ]
}

/// A scenario that cannot run here (a feature not built yet, say): the
/// table says why instead of a number.
struct ScenarioUnavailable: Error, CustomStringConvertible {
    var description: String
}
