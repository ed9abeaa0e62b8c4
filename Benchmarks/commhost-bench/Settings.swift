/// How long each scenario runs: `--quick` (the whole run under a minute) or
/// full (under ten minutes). Every scenario warms up, then measures rounds.
struct Settings: Sendable {
    var quick: Bool
    var warmup: Int
    var rounds: Int
    /// comm_msg frames per dispatch round (the same bytes for every contender).
    var dispatchMessages: Int
    /// Messages per pipelined stdio/socket round.
    var pipelinedMessages: Int
    /// Round trips per ping-pong round.
    var pingPongs: Int
    /// 1 MiB messages per buffers round.
    var bufferMessages: Int
    /// 64 MiB messages per buffers round.
    var largeBufferMessages: Int
    /// Comms opened in the memory scenario.
    var comms: Int
    /// Memory-scenario repetitions.
    var memoryRounds: Int
    /// Launches in the startup scenario.
    var launches: Int
    /// Reloads in the reload scenario.
    var reloads: Int

    static let quick = Settings(quick: true, warmup: 1, rounds: 3, dispatchMessages: 30_000, pipelinedMessages: 40_000,
                                pingPongs: 1_000, bufferMessages: 10, largeBufferMessages: 1, comms: 100_000, memoryRounds: 1, launches: 5, reloads: 3)
    static let full = Settings(quick: false, warmup: 2, rounds: 7, dispatchMessages: 200_000, pipelinedMessages: 200_000,
                               pingPongs: 10_000, bufferMessages: 40, largeBufferMessages: 2, comms: 100_000, memoryRounds: 3, launches: 20, reloads: 10)
}
