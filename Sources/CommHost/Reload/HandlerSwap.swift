import CommPluginAPI

/// Switches open comms from old handlers to new ones in every session at
/// once: the core of both a library reload and a manifest reload.
///
/// Every session is held while it runs, so inbound frames wait and are then
/// handled, in order, by whatever serves their comm after the switch. Before
/// anything changes, each comm that is to move and whose old and new
/// handlers both implement hand-off is snapshotted by the old handler and
/// restored by the new one, and the round trip is checked (the new handler's
/// snapshot of what it restored must equal the old bytes). Any failure there
/// destroys the restored instances and leaves everything as it was.
struct HandlerSwap {
    /// What to do with one open comm.
    enum Decision {
        /// Leave it with its handler.
        case keep
        /// Move it to this handler (hand-off when both sides support it,
        /// else close it with cause `reload`).
        case move(Handler)
        /// Close it with this cause (its target was removed or disabled).
        case close(CloseCause)
    }

    /// What a successful swap did.
    struct Report {
        var handedOff = 0
        var closed = 0
        /// Seconds the sessions were held (inbound frames waited).
        var heldSeconds = 0.0
    }

    /// Why a swap was abandoned, before anything changed.
    struct Failure: Error, CustomStringConvertible {
        var step: String
        var reason: String
        var description: String { "\(step): \(reason)" }
    }

    /// The `comm_close` data a comm closed by a reload without hand-off gets.
    static let reloadedData = Array(#"{"reason":"reloaded"}"#.utf8)

    /// Holds every session of `manager`, decides for each open comm, hands
    /// off state, then replaces the target table with `table` and applies the
    /// decisions. Throws (changing nothing) when a hand-off fails.
    static func run(manager: CommManager, table: [String: Handler], decide: (Comm) -> Decision) throws(Failure) -> Report {
        let started = MonotonicClock.seconds()
        let held = manager.holdAll()
        defer { manager.releaseAll(held) }

        var moves: [Move] = []
        var closes: [(Session, Comm, CloseCause)] = []
        for session in held {
            for comm in session.comms(servedBy: { _ in true }) {
                switch decide(comm) {
                case .keep:
                    continue
                case .close(let cause):
                    closes.append((session, comm, cause))
                case .move(let handler) where handler === comm.handler:
                    continue
                case .move(let handler):
                    if comm.handler.supportsHandOff && handler.supportsHandOff && comm.owesClose {
                        moves.append(Move(comm: comm, handler: handler))
                    } else {
                        closes.append((session, comm, .reload))
                    }
                }
            }
        }

        // Prepare: nothing observable changes until every hand-off succeeded.
        for i in moves.indices {
            do {
                moves[i].instance = try handOff(&moves[i])
            } catch {
                abandon(moves[...i])
                throw error
            }
        }

        // Commit.
        manager.targets.replace(with: table)
        for move in moves {
            move.comm.handler = move.handler
            move.comm.instance = move.instance
        }
        for (session, comm, cause) in closes {
            session.closeHeld(comm, cause: cause, data: cause == .reload ? reloadedData : [])
        }
        return Report(handedOff: moves.count, closed: closes.count, heldSeconds: MonotonicClock.seconds() - started)
    }

    /// One comm moving to a new handler, and the instance restored for it.
    private struct Move {
        var comm: Comm
        var handler: Handler
        var instance: UnsafeMutableRawPointer? = nil
        var restored = false
    }

    /// Snapshot on the old handler, restore on the new one, and the round-trip check.
    private static func handOff(_ move: inout Move) throws(Failure) -> UnsafeMutableRawPointer? {
        let comm = move.comm
        do {
            let state = try comm.handler.snapshot(instance: comm.instance, comm: comm)
            let instance = try move.handler.restore(comm: comm, state: state)
            move.instance = instance
            move.restored = true
            let again = try move.handler.snapshot(instance: instance, comm: comm)
            guard again == state else {
                throw Failure(step: "round trip", reason: "comm \"\(comm.id)\" (target \(comm.targetName)): the new version's snapshot of the restored state (\(again.count) bytes) differs from the old version's (\(state.count) bytes)")
            }
            return instance
        } catch let error as PluginCallError {
            throw Failure(step: move.restored ? "snapshot (new version)" : "hand-off", reason: "comm \"\(comm.id)\" (target \(comm.targetName)): \(error)")
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(step: "hand-off", reason: "\(error)")
        }
    }

    /// Destroys instances restored for a hand-off that will not happen: the
    /// new handler's close callback (cause reload) frees each. The old
    /// instances are untouched and go on serving.
    private static func abandon(_ moves: ArraySlice<Move>) {
        for move in moves where move.restored {
            OwnedMessage(data: reloadedData).withMessage { message in
                move.handler.close(instance: move.instance, comm: move.comm, message: message, cause: CloseCause.reload.cValue)
            }
        }
    }
}
