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
        /// Close it with this cause (its target was removed or disabled), and
        /// `data` as the comm_close's data (nil: `{}`, or `{"reason":"reloaded"}`
        /// for cause reload).
        case close(CloseCause, data: [UInt8]? = nil)
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
    /// The close data of a comm whose target a manifest reload removed.
    static let removedData = Array(#"{"reason":"target removed"}"#.utf8)

    /// Holds every session of `manager`, decides for each open comm, hands
    /// off state, then replaces the target table with `table`, applies the
    /// decisions, and moves each session between library versions: a
    /// library that leaves the table gets session_end (cause `handedOff`
    /// when a library at the same path replaces it, else `removed`), one that
    /// joins gets session_start (`resumed` or `started`). Throws (changing
    /// nothing) when a hand-off fails.
    /// With `freshSessions`, a joining library gets cause `started` even
    /// where it replaces one at the same path (a worker restarted after a
    /// crash knows nothing of the sessions).
    static func run(manager: CommManager, table: [String: Handler], freshSessions: Bool = false,
                    decide: (Comm) -> Decision) throws(Failure) -> Report {
        let started = MonotonicClock.seconds()
        let held = manager.holdAll()
        defer { manager.releaseAll(held) }

        let before = TargetTable.libraries(of: manager.targets.all)
        let after = TargetTable.libraries(of: table)
        let leaving = before.filter { old in !after.contains { $0 === old } }
        let joining = after.filter { new in !before.contains { $0 === new } }
        // No comm may be created for a leaving version from here on (host
        // open refuses); the barrier makes sure every open that got past the
        // check is in a comm table before the tables are read.
        for library in leaving { library.setAccepting(false) }
        for session in held { session.barrier() }

        var moves: [Move] = []
        var closes: [(Session, Comm, CloseCause, [UInt8]?)] = []
        for session in held {
            for comm in session.comms(servedBy: { _ in true }) {
                switch decide(comm) {
                case .keep:
                    continue
                case .close(let cause, let data):
                    closes.append((session, comm, cause, data))
                case .move(let handler) where handler === comm.handler:
                    continue
                case .move(let handler):
                    if comm.handler.supportsHandOff && handler.supportsHandOff && comm.needsCloseCallback {
                        moves.append(Move(session: session, comm: comm, handler: handler))
                    } else {
                        closes.append((session, comm, .reload, nil))
                    }
                }
            }
        }

        // Prepare: nothing observable changes until every hand-off succeeded.
        // A restore that cannot read the old state closes that comm instead.
        var handedOff: [Move] = []
        for move in moves {
            var move = move
            do {
                if try handOff(&move) {
                    handedOff.append(move)
                } else {
                    closes.append((move.session, move.comm, .reload, nil))
                }
            } catch {
                abandon(handedOff + [move])
                for library in leaving { library.setAccepting(true) }
                throw error
            }
        }

        // Commit.
        manager.targets.replace(with: table)
        for move in handedOff {
            let old = move.comm.handler.library
            move.session.finishTasks { $0.comm === move.comm && $0.library === old }
            move.comm.handler = move.handler
            move.comm.instance = move.instance
        }
        for (session, comm, cause, data) in closes {
            session.closeFromHost(comm, cause: cause, data: data ?? (cause == .reload ? reloadedData : removedData))
        }
        for session in held {
            let serving = session.libraries
            for old in leaving where serving.contains(where: { $0 === old }) {
                session.endLibrary(old, cause: joining.contains { $0.path == old.path } && !freshSessions ? .handedOff : .removed)
            }
            for new in joining {
                let resumed = serving.contains { old in old.path == new.path && leaving.contains { $0 === old } }
                session.startLibrary(new, cause: resumed && !freshSessions ? .resumed : .started)
            }
        }
        return Report(handedOff: handedOff.count, closed: closes.count, heldSeconds: MonotonicClock.seconds() - started)
    }

    /// One comm moving to a new handler, and the instance restored for it.
    private struct Move {
        var session: Session
        var comm: Comm
        var handler: Handler
        var instance: UnsafeMutableRawPointer? = nil
        var restored = false
    }

    /// Snapshot on the old handler, restore on the new one, and (between two
    /// builds of the same version) the round-trip check. Returns false when
    /// the new version's restore answered `COMMHOST_ESTATE`: that comm is to
    /// be closed, the reload goes on.
    private static func handOff(_ move: inout Move) throws(Failure) -> Bool {
        let comm = move.comm
        let oldVersion = comm.handler.library.version
        let newVersion = move.handler.library.version
        let where_ = "comm \"\(comm.id)\" (target \(comm.targetName))"
        let state: [UInt8]
        do {
            state = try comm.handler.snapshot(instance: comm.instance, comm: comm)
        } catch {
            throw Failure(step: "snapshot (old version)", reason: "\(where_): \(error)")
        }
        do {
            move.instance = try move.handler.restore(comm: comm, fromVersion: oldVersion, state: state)
            move.restored = true
        } catch where error.status == COMMHOST_ESTATE {
            return false
        } catch {
            throw Failure(step: "restore (new version)", reason: "\(where_): \(error); to proceed, make restore read version \(oldVersion)'s state, or return COMMHOST_ESTATE for it so such comms are closed with {\"reason\":\"reloaded\"}")
        }
        guard oldVersion == newVersion else { return true }
        let again: [UInt8]
        do {
            again = try move.handler.snapshot(instance: move.instance, comm: comm)
        } catch {
            throw Failure(step: "snapshot (new version)", reason: "\(where_): \(error)")
        }
        guard again == state else {
            throw Failure(step: "round trip", reason: "\(where_): the new build's snapshot of the restored state (\(again.count) bytes) differs from the old build's (\(state.count) bytes), and both say version \(newVersion); to proceed, give the new build another version text (restore then receives the old one and may migrate, and no round trip is compared), or keep the state format")
        }
        return true
    }

    /// Destroys instances restored for a hand-off that will not happen: their
    /// tasks get their last call, then the new handler's close callback
    /// (cause reload) frees each. The old instances are untouched and go on
    /// serving.
    private static func abandon(_ moves: [Move]) {
        for move in moves {
            // Tasks the new version started for the comm (in restore) end first.
            let new = move.handler.library
            move.session.finishTasks { $0.comm === move.comm && $0.library === new }
            guard move.restored else { continue }
            OwnedMessage(data: reloadedData).withMessage { message in
                move.handler.close(instance: move.instance, comm: move.comm, message: message, cause: .reload)
            }
        }
    }
}
