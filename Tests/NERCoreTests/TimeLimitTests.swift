import NERCore
import Testing

/// resources.time is read the way Slurm reads --time, so a job is limited alike on both backends.
@Suite struct TimeLimitTests {
    @Test func everySlurmFormIsRead() throws {
        #expect(try TimeLimit.seconds("90") == 5400)
        #expect(try TimeLimit.seconds("01:30") == 90)
        #expect(try TimeLimit.seconds("00:00:03") == 3)
        #expect(try TimeLimit.seconds("02:00:00") == 7200)
        #expect(try TimeLimit.seconds("1-2") == 26 * 3600)
        #expect(try TimeLimit.seconds("1-02:30") == 26 * 3600 + 1800)
        #expect(try TimeLimit.seconds("2-00:00:05") == 48 * 3600 + 5)
        #expect(try TimeLimit.seconds("UNLIMITED") == nil)
        #expect(try TimeLimit.seconds("infinite") == nil)
        #expect(try TimeLimit.seconds("0") == nil)
    }

    @Test func whatSlurmRefusesIsAUsageError() {
        for bad in ["", "1h", "1:2:3:4", "1-2-3", "-5", "1-", ":30", "01:xx", "1-1:1:1:1", "99999999999999"] {
            #expect(throws: ToolError.self, "\(bad)") { try TimeLimit.seconds(bad) }
        }
    }
}
