import Foundation
import NERFuzz
import Testing

/// Every committed fuzz input, crash reproducers included, goes through its target again on every
/// test run: one that crashes, traps or breaks an invariant fails the suite (docs/fuzzing.md).
@Suite struct FuzzCorpusTests {
    @Test(arguments: FuzzTarget.allCases)
    func corpusReplaysCleanly(_ target: FuzzTarget) throws {
        let dir = FuzzTarget.fuzzRoot + "/corpus/" + target.rawValue
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files.count >= 3, "\(dir) should hold a handful of seeds")
        for name in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            target.run(Array(data))
        }
    }
}
