import Foundation
import NERCore
import NERQueue
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SpoolTests {
    func makeSpool() throws -> (Spool, TempDir) {
        let t = TempDir("spool")
        let s = Spool(root: t.path + "/spool")
        try s.ensureLayout()
        return (s, t)
    }

    func job(_ name: String = "j", priority: Int = 0) throws -> JSON {
        var spec = JobSpec(train: "/dev/null")
        spec.epochs = 2
        return try JSON.from(Job(name: name, spec: spec, priority: priority))
    }

    @Test func claimsInPriorityThenFifoOrder() throws {
        let (s, t) = try makeSpool(); defer { t.remove() }
        let a = try job("a"), b = try job("b", priority: 5), c = try job("c")
        try s.enqueue([a]); try s.enqueue([b]); try s.enqueue([c])
        var names = ArraySlice(s.queuedNames())
        let me = ProcessIdentity.current
        let order = try (0..<3).map { _ in try s.claim(from: &names, owner: me)!.job["name"]!.stringValue! }
        #expect(order == ["b", "a", "c"])
        #expect(s.claimNames().count == 3)
        #expect(try s.claim(from: &names, owner: me) == nil)
    }

    @Test func aClaimAlreadyTakenIsSkipped() throws {
        let (s, t) = try makeSpool(); defer { t.remove() }
        try s.enqueue([try job("a"), try job("b")])
        var stale = ArraySlice(s.queuedNames())
        var fresh = ArraySlice(s.queuedNames())
        let other = ProcessIdentity(host: "elsewhere", pid: 1, startTicks: 1)
        let first = try #require(try s.claim(from: &fresh, owner: other))
        let second = try #require(try s.claim(from: &stale, owner: .current))
        #expect(first.jobId != second.jobId)
    }

    @Test func expiredLeaseOfAnotherHostIsReturnedWithTheNextAttempt() throws {
        let (s, t) = try makeSpool(); defer { t.remove() }
        let j = try job("x")
        try s.enqueue([j])
        var names = ArraySlice(s.queuedNames())
        let other = ProcessIdentity(host: "node-7", pid: 4242, startTicks: 99)
        let claim = try #require(try s.claim(from: &names, owner: other))
        // A fresh lease on another host is left alone...
        #expect(s.recoverExpired(lease: 60, maxAttempts: 3, except: .current).isEmpty)
        // ...an old one is returned with attempt + 1.
        let old = timespec(tv_sec: time(nil) - 120, tv_nsec: 0)
        var times = [old, old]
        utimensat(AT_FDCWD, claim.path, &times, 0)
        let r = s.recoverExpired(lease: 60, maxAttempts: 3, except: .current)
        #expect(r.count == 1)
        #expect(r.first?.outcome == .requeued(attempt: 2))
        #expect(r.first?.reason.contains("lease") == true)
        let requeued = try s.read(s.new + "/" + s.queuedNames()[0])
        #expect(requeued["attempt"] == 2)
        #expect(requeued["job_id"] == j["job_id"])
        #expect(s.claimNames().isEmpty)
    }

    @Test func deadOwnerOnThisHostIsRecoveredAtOnceAndDeadLetteredAtTheLimit() throws {
        let (s, t) = try makeSpool(); defer { t.remove() }
        var j = try job("y")
        j["attempt"] = 3
        try s.enqueue([j])
        var names = ArraySlice(s.queuedNames())
        // A pid that cannot be alive: the kernel's pid_max is below 2^22.
        let gone = ProcessIdentity(host: ProcessIdentity.current.host, pid: 4_194_999, startTicks: 5)
        _ = try #require(try s.claim(from: &names, owner: gone))
        var killed: [String] = []
        let r = s.recoverExpired(lease: 3600, maxAttempts: 3, except: .current) { killed.append($0) }
        #expect(r.first?.outcome == .deadLettered)
        #expect(killed == [j["job_id"]!.stringValue!])
        let dead = try s.read(s.failed + "/" + (try FileManager.default.contentsOfDirectory(atPath: s.failed)[0]))
        #expect(dead["error"]?.stringValue?.contains("died") == true)
    }

    /// A recoverer that died after requeueing but before removing its hidden claim: the next
    /// recovery drops the leftover instead of queueing the job twice.
    @Test func halfFinishedRecoveryDoesNotDuplicateTheJob() throws {
        let (s, t) = try makeSpool(); defer { t.remove() }
        try s.enqueue([try job("z")])
        let key = s.queuedNames()[0]
        let leftover = s.cur + "/." + key + "@recovering@\(ProcessIdentity.current.host)@4194998@7"
        try FileManager.default.copyItem(atPath: s.new + "/" + key, toPath: leftover)
        let r = s.recoverExpired(lease: 3600, maxAttempts: 3, except: .current)
        #expect(r.isEmpty)
        #expect(!fileExists(leftover))
        #expect(s.queuedNames() == [key])
    }

    @Test func completedJobGoesToDoneWithItsFinalRecord() throws {
        let (s, t) = try makeSpool(); defer { t.remove() }
        try s.enqueue([try job("d")])
        var names = ArraySlice(s.queuedNames())
        let c = try #require(try s.claim(from: &names, owner: .current))
        var final = c.job
        final["status"] = "registered"
        try s.complete(c, record: final)
        #expect(s.claimNames().isEmpty)
        #expect(try s.read(s.done + "/" + c.key)["status"] == "registered")
        #expect(s.purge() == 1)
    }
}
