// How jobs fetched together are split into requests, from `--batch` and the
// executor's health, without a network.
import ExecutorProtocol
import XCTest

@testable import JobDispatch

final class DeliveryPlanTests: XCTestCase {
    private let sidecar = ExecutorHealth(features: ["batch", "cancel", "stream"], capacity: 10, maxStreamJobs: 100, processes: 2)

    private func sizes(_ count: Int, _ setting: BatchSetting, _ health: ExecutorHealth?) -> [String] {
        DeliveryPlan.groups(count: count, setting: setting, health: health).map { "\($0.0):\($0.1.count)" }
    }

    func testStreamsByDefaultCarryEveryJobFetchedTogetherOnePerProcess() {
        XCTAssertEqual(sidecar.jobsPerStream, 100, "the executor's limit, not its capacity")
        XCTAssertEqual(sizes(10, .auto, sidecar), ["stream:5", "stream:5"], "one stream per Puma worker")
        XCTAssertEqual(sizes(13, .auto, sidecar), ["stream:7", "stream:6"], "near-equal sizes")
        XCTAssertEqual(sizes(3, .auto, sidecar), ["stream:2", "single:1"])
        XCTAssertEqual(sizes(1, .auto, sidecar), ["single:1"], "light load: one job, one plain request")
        XCTAssertEqual(sizes(0, .auto, sidecar), [])
        let oneProcess = ExecutorHealth(features: ["stream"], capacity: 5, maxStreamJobs: 100, processes: 1)
        XCTAssertEqual(sizes(10, .auto, oneProcess), ["stream:10"], "past the capacity: the rest wait in the executor")
        XCTAssertEqual(
            sizes(6, .auto, ExecutorHealth(features: ["stream"], capacity: 3, maxStreamJobs: 2)), ["stream:2", "stream:2", "stream:2"],
            "the executor's own limit")
    }

    func testWithoutStreamsTheDefaultIsOneJobPerRequest() {
        XCTAssertEqual(sizes(3, .auto, nil), ["single:1", "single:1", "single:1"], "health unknown")
        XCTAssertEqual(sizes(3, .auto, ExecutorHealth(features: ["batch", "cancel"])), ["single:1", "single:1", "single:1"])
    }

    func testAFixedBatchUsesStreamsWhenOfferedElseTheBatchEndpoint() {
        XCTAssertEqual(sizes(5, .fixed(1), sidecar), Array(repeating: "single:1", count: 5))
        XCTAssertEqual(sizes(5, .fixed(20), sidecar), ["stream:5"])
        XCTAssertEqual(sizes(5, .fixed(20), ExecutorHealth(features: ["batch"])), ["batch:5"])
        XCTAssertEqual(sizes(5, .fixed(2), nil), ["batch:2", "batch:2", "single:1"], "a job alone in its group goes to /v1/jobs")
        XCTAssertEqual(DeliveryPlan.groups(count: 5, setting: .fixed(2), health: nil).map(\.1), [0..<2, 2..<4, 4..<5])
    }
}
