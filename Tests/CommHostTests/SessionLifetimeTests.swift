import CommPluginAPI
import Foundation
import Glibc
import XCTest
@testable import CommHost

/// Ended sessions are freed with everything they held: counted by live
/// objects (sessions, comms, handle slots, plugin timers and session data),
/// not by timing or RSS.
final class SessionLifetimeTests: XCTestCase {
    func testThousandsOfEndedSessionsLeaveNoSessionCommHandleOrTaskBehind() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let path = try TestSupport.compileC(source: TestSupport.fixture("churn_plugin.c"), output: dir + "/libchurn.so")
        let staging = try StagingArea()
        defer { staging.removeAll() }
        let library = try PluginLibrary.load(path: path, staging: staging)
        let handler = try XCTUnwrap(library.handler(named: "churn"))
        let manager = CommManager(targets: TargetTable(["churn": handler]))
        let pluginLive = try XCTUnwrap(Self.symbol(library, "churn_live"))

        let sessionsBefore = Session.live.load(ordering: .relaxed), commsBefore = Comm.live.load(ordering: .relaxed)
        let commSlotsBefore = CommHandle.table.count, sessionSlotsBefore = SessionHandle.table.count
        var output: [UInt8] = []
        for round in 0..<2_000 {
            let session = manager.makeSession()
            // As the socket server does: the early-end hook holds the
            // connection, which holds the session (a cycle until the end).
            let connection = Connection(session: session)
            session.whenEndedEarly { _ = connection }
            for comm in 0..<10 {
                feed(session, #"{"msg_type":"comm_open","content":{"comm_id":"c\#(comm)","target_name":"churn","data":{}}}"#)
            }
            for message in 0..<40 {
                feed(session, #"{"msg_type":"comm_msg","content":{"comm_id":"c\#(message % 10)","data":{"n":\#(message)}}}"#)
            }
            if round == 0 {
                _ = session.takeOutput(into: &output, wait: false)
                let text = String(decoding: output, as: UTF8.self)
                XCTAssertTrue(text.contains(#""target_name":"churn.greeting""#), "session_start opened the greeting: \(text.prefix(300))")
                XCTAssertEqual(text.components(separatedBy: #""data":{"n":"#).count - 1, 40, "every message was echoed")
            }
            manager.end(session, cause: .sessionEnded)
        }
        XCTAssertEqual(Session.live.load(ordering: .relaxed), sessionsBefore, "every ended session was freed")
        XCTAssertEqual(Comm.live.load(ordering: .relaxed), commsBefore, "every comm of an ended session was freed")
        XCTAssertEqual(CommHandle.table.count, commSlotsBefore, "no comm handle slot is left")
        XCTAssertEqual(SessionHandle.table.count, sessionSlotsBefore, "no session handle slot is left")
        XCTAssertEqual(pluginLive(), 0, "every timer had its last call and every session_start its session_end")
        XCTAssertTrue(manager.liveSessions.isEmpty)
        library.retire()
    }

    private final class Connection: Sendable {
        let session: Session
        init(session: Session) { self.session = session }
    }

    private func feed(_ session: Session, _ frame: String) {
        var bytes = Array(frame.utf8)
        bytes.withUnsafeMutableBytes { session.receive(UnsafeRawBufferPointer($0), line: 1) }
    }

    private static func symbol(_ library: PluginLibrary, _ name: String) -> (@convention(c) () -> Int)? {
        guard let handle = dlopen(library.stagedPath, RTLD_NOW | RTLD_NOLOAD) else { return nil }
        defer { dlclose(handle) }
        guard let address = dlsym(handle, name) else { return nil }
        return unsafeBitCast(address, to: (@convention(c) () -> Int).self)
    }
}
