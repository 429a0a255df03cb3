import NERArtifact
import NERCore
import NERQueue

/// Job and record NDJSON as the pipeline stages read it: each record is turned into a job the way
/// `ner-queue` does, its spec decoded the way `ner-train` does and encoded again; then the whole
/// input is read and checked the way `ner-pack` does.
enum NDJSONTarget {
    static func run(_ data: [UInt8]) {
        let path = Scratch.write(data, to: "input.ndjson")
        guard let lines = try? LineReader(path: path) else { fatalError("cannot open \(path)") }
        var reader = NDJSONReader(lines)
        while true {
            let record: JSON?
            do { record = try reader.next() } catch { break }
            guard let record else { break }
            if let job = try? JobRequest.make(from: record, context: "input:\(lines.lineNumber)") {
                _ = try? JSON.from(job)
            }
            _ = try? JSON.object(record["spec"]?.objectValue ?? [:]).decode(JobSpec.self)
            _ = try? record.decode(Job.self)
            _ = record.ndjsonLine()
            _ = record.prettyEncoded()
        }
        guard let again = try? LineReader(path: path) else { fatalError("cannot open \(path)") }
        var packReader = NDJSONReader(again)
        _ = try? PackStage.readAll(&packReader)
    }
}
