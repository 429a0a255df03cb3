import ArgumentParser
import Foundation
import Logging
import NERCore

public enum LogFormat: String, ExpressibleByArgument, Sendable {
    case plain, json
}

/// stderr carries logs (docs/records.md): `ner-x: message` lines, or JSON lines with `--log-format json`.
public enum Logs {
    public static func bootstrap(tool: String, format: LogFormat, quiet: Bool) {
        LoggingSystem.bootstrap { label in
            var h = StderrLogHandler(tool: tool, json: format == .json)
            h.logLevel = quiet ? .error : (ProcessInfo.processInfo.environment["NER_DEBUG"] != nil ? .debug : .info)
            return h
        }
    }
}

struct StderrLogHandler: LogHandler {
    let tool: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, b in b } }
        let text: String
        if json {
            var o: [String: JSON] = ["time": .string(Timestamp.now()), "tool": .string(tool),
                                     "level": .string(level.rawValue), "msg": .string(message.description)]
            for (k, v) in all { o[k] = .string(v.description) }
            text = JSON.object(o).compactString
        } else {
            let prefix = level >= .warning ? "\(tool): \(level == .warning ? "warning" : "error"): " : "\(tool): "
            let meta = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            text = prefix + message.description + meta
        }
        // One write(2) per line, so lines from concurrent threads never interleave; a closed stderr
        // is ignored rather than fatal.
        let bytes = Array((text + "\n").utf8)
        bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = write(2, buffer.baseAddress! + done, buffer.count - done)
                if n <= 0 { if errno == EINTR { continue } else { return } }
                done += n
            }
        }
    }
}
