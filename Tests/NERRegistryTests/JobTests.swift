import Foundation
import NERCore
import NERRegistry
import Testing
import TestSupport

@Suite struct JobTests {
    @Test func transitionsAreKeptInOrderWithAttempts() throws {
        let f = try Fixture("reg-jobs")
        defer { f.remove() }
        let r = f.registry
        let id = Job.makeId(name: "conll")
        try r.recordTransition(jobId: id, name: "conll", status: "queued", attempt: 1, record: ["job_id": .string(id)])
        try r.recordTransition(jobId: id, name: "conll", status: "running", attempt: 1, backendId: "4242")
        try r.recordTransition(jobId: id, name: "conll", status: "failed", attempt: 1, error: "node died")
        try r.recordTransition(jobId: id, name: "conll", status: "running", attempt: 2)
        try r.recordTransition(jobId: id, name: "conll", status: "running", attempt: 2)
        try r.recordTransition(jobId: id, name: "conll", status: "trained", attempt: 2)
        try r.recordTransition(jobId: id, name: "conll", status: "packed", attempt: 2)
        try r.recordTransition(jobId: id, name: "conll", status: "registered", attempt: 2, modelId: "conll-m1")

        let t = try r.transitions(jobId: id)
        #expect(t.map(\.status) == ["queued", "running", "failed", "running", "trained", "packed", "registered"])
        #expect(t.map(\.attempt) == [1, 1, 1, 2, 2, 2, 2])
        #expect(t[2].detail == "node died")
        #expect(t.allSatisfy { $0.pid == Int(getpid()) && !$0.host.isEmpty })
        #expect(t.map(\.id) == t.map(\.id).sorted())

        let job = try #require(try r.job(id))
        #expect(job.status == "registered" && job.attempt == 2)
        #expect(job.backendId == "4242", "kept from the earlier transition")
        #expect(job.modelId == "conll-m1")
        #expect(job.error == nil, "a later attempt clears the earlier error")
        #expect(job.record?["job_id"]?.stringValue == id)
        #expect(job.json["status"] == "registered")
    }

    @Test func aFailedJobShowsFailedAndItsError() throws {
        let f = try Fixture("reg-failed")
        defer { f.remove() }
        let r = f.registry
        try r.recordTransition(jobId: "a-1", name: "a", status: "queued", attempt: 1)
        try r.recordTransition(jobId: "a-1", name: "a", status: "running", attempt: 1)
        try r.recordTransition(jobId: "a-1", name: "a", status: "failed", attempt: 1,
                               error: "ner-train exited 65: train.txt:3: expected 2 columns, found 1")
        try r.recordTransition(jobId: "b-1", name: "b", status: "running", attempt: 1)

        let failed = try r.jobs(status: "failed")
        #expect(failed.map(\.jobId) == ["a-1"])
        #expect(failed[0].error?.contains("train.txt:3") == true)
        #expect(failed[0].json["error"]?.stringValue == failed[0].error)
        #expect(Set(try r.jobs().map(\.jobId)) == ["a-1", "b-1"])
        #expect(try r.job("nope") == nil)
        #expect(try r.transitions(jobId: "nope").isEmpty)

        let bad = #expect(throws: ToolError.self) {
            try r.recordTransition(jobId: "a-1", name: "a", status: "exploded", attempt: 1)
        }
        #expect(bad?.status == .usage)
    }
}
