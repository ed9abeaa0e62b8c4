/// A ``CommHandler`` whose comms survive a reload of the library: the old
/// version's instance gives its ``state``, the new version's
/// ``init(comm:restoring:)`` takes it up, and the client sees nothing.
///
/// The state crosses as JSON (sorted keys, so the same state gives the same
/// bytes), possibly from an older version of the handler: give new fields of
/// `State` defaults (or decode them with `decodeIfPresent`) so old state
/// still reads. State that does not decode fails the hand-off with
/// ``PluginStatus/unreadableState`` and the host closes the comm instead.
///
/// Handlers that do not adopt this protocol have their comms closed on
/// reload (``CloseCause/reload``).
public protocol HandsOffState: CommHandler {
    /// Everything the instance needs to carry on after a reload.
    associatedtype State: Codable

    /// The instance's state now. Read on the old version at hand-off.
    var state: State { get }

    /// Takes over an already open `comm` with `state` from the old version's
    /// ``state``. Throwing fails the hand-off (the host closes the comm).
    init(comm: Comm, restoring state: State) throws
}
