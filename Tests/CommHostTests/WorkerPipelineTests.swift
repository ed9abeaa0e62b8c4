import Foundation
import Glibc
import Synchronization
import XCTest
@testable import CommHost

/// The comm_msgs in flight to one worker (`WorkerPipeline`).
final class WorkerPipelineTests: XCTestCase {
    func testASenderThatFindsThePipelineFullWaitsUntilHalfIsAnswered() throws {
        let pipeline = WorkerPipeline(deadlineNanoseconds: 60_000_000_000)
        for id in 1...UInt64(WorkerPipeline.capacity) {
            XCTAssertNotNil(pipeline.add(id: id, call: PipelinedCall(), what: WorkerCallback(name: "comm_msg")))
        }
        let resumed = Atomic<Int>(-1)
        let taken = Atomic<Int>(0)
        let waiter = Thread {
            _ = pipeline.wait(untilFewerThan: WorkerPipeline.capacity, beforeBlocking: {})
            resumed.store(taken.load(ordering: .acquiring), ordering: .releasing)
        }
        waiter.start()
        usleep(50_000)
        XCTAssertEqual(resumed.load(ordering: .acquiring), -1, "a full pipeline holds the sender")
        // Answered one by one, in order: the sender goes on only once no more than resumeAt are in flight.
        for id in 1...UInt64(WorkerPipeline.capacity - WorkerPipeline.resumeAt) {
            taken.store(Int(id), ordering: .releasing)
            XCTAssertNotNil(pipeline.take(id))
            if id == 1 || id == 100 {
                usleep(20_000)
                XCTAssertEqual(resumed.load(ordering: .acquiring), -1, "room for one is not enough (\(id) answered)")
            }
        }
        let deadline = MonotonicClock.seconds() + 10
        while resumed.load(ordering: .acquiring) < 0, MonotonicClock.seconds() < deadline { usleep(1_000) }
        XCTAssertEqual(resumed.load(ordering: .acquiring), WorkerPipeline.capacity - WorkerPipeline.resumeAt,
                       "the sender goes on when the pipeline has drained to resumeAt")
    }

    func testWaitingForNoneInFlightEndsWithTheLastReply() {
        let pipeline = WorkerPipeline(deadlineNanoseconds: 60_000_000_000)
        for id in 1...UInt64(3) { XCTAssertNotNil(pipeline.add(id: id, call: PipelinedCall(), what: WorkerCallback(name: "comm_msg"))) }
        let done = Atomic<Bool>(false)
        let waiter = Thread {
            _ = pipeline.wait(untilFewerThan: 0, beforeBlocking: {})
            done.store(true, ordering: .releasing)
        }
        waiter.start()
        for id in 1...UInt64(2) { XCTAssertNotNil(pipeline.take(id)) }
        usleep(20_000)
        XCTAssertFalse(done.load(ordering: .acquiring))
        XCTAssertNotNil(pipeline.take(3))
        let deadline = MonotonicClock.seconds() + 10
        while !done.load(ordering: .acquiring), MonotonicClock.seconds() < deadline { usleep(1_000) }
        XCTAssertTrue(done.load(ordering: .acquiring))
    }

    func testRequestsAnsweredOutOfOrderLeaveTheOthersInOrderAcrossTheRingsGrowth() {
        let pipeline = WorkerPipeline(deadlineNanoseconds: 60_000_000_000)
        let count = UInt64(WorkerPipeline.capacity + 100)
        let calls = (0...count).map { _ in PipelinedCall() }
        for id in 1...count { XCTAssertNotNil(pipeline.add(id: id, call: calls[Int(id)], what: WorkerCallback(name: "comm_msg"))) }
        XCTAssertTrue(pipeline.take(500) === calls[500], "a request in the middle is found")
        XCTAssertNil(pipeline.take(500), "and taken once")
        XCTAssertNil(pipeline.take(count + 1), "an id never sent is not in flight")
        XCTAssertNotNil(pipeline.call(for: 501))
        XCTAssertNil(pipeline.call(for: 500))
        var order: [UInt64] = []
        for id in 1...count where id != 500 {
            guard let call = pipeline.take(id), let index = calls.firstIndex(where: { $0 === call }) else {
                return XCTFail("request \(id) was lost")
            }
            order.append(UInt64(index))
        }
        XCTAssertEqual(order, (1...count).filter { $0 != 500 })
        XCTAssertTrue(pipeline.takeAll().isEmpty)
    }

    func testADeathEndsEveryRequestInFlightOldestFirst() {
        let pipeline = WorkerPipeline(deadlineNanoseconds: 60_000_000_000)
        for id in 1...UInt64(200) { XCTAssertNotNil(pipeline.add(id: id, call: PipelinedCall(), what: WorkerCallback(name: "comm_msg"))) }
        for id in 1...UInt64(150) { XCTAssertNotNil(pipeline.take(id)) }
        for id in 201...UInt64(300) { XCTAssertNotNil(pipeline.add(id: id, call: PipelinedCall(), what: WorkerCallback(name: "comm_msg"))) }
        XCTAssertEqual(pipeline.takeAll().map(\.id), Array(151...300))
        XCTAssertNil(pipeline.add(id: 301, call: PipelinedCall(), what: WorkerCallback(name: "comm_msg")), "nothing is added after a death")
    }
}
