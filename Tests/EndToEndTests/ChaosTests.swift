import Foundation
import Testing
import TestSupport

/// bench/chaos.sh in its short form: 4 dispatchers over 100 jobs that fail 10% of the time, one
/// killed with SIGKILL every 3 s for 60 s. The script checks the spool, the registry and the jobs'
/// own log of what completed, and fails on any lost or duplicated job.
@Suite struct ChaosTests {
    @Test func killedDispatchersLoseAndDuplicateNoJob() throws {
        let r = try run("/bin/bash", [TestTools.repoRoot + "/bench/chaos.sh"],
                        env: ["BIN": TestTools.productsDir, "JOBS": "100", "DURATION": "60"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let verdict = try #require(r.lines.last { $0.hasPrefix("chaos: done ") }, "\(r.stdout)\(r.stderr)")
        #expect(verdict.hasSuffix("lost 0, duplicated 0"), "\(verdict)")
        // The run really was chaotic: dispatchers were killed while jobs ran, and some attempts failed.
        let header = try #require(r.lines.first { $0.contains("SIGKILLs") })
        let kills = Int(header.split(separator: " ").firstIndex(of: "SIGKILLs").map { header.split(separator: " ")[$0 - 1] } ?? "") ?? 0
        #expect(kills >= 5, "\(header)")
    }
}
