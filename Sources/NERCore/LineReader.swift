import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads a file descriptor line by line with one reusable buffer, counting lines for error messages.
/// Lines are returned without their `\n` (and without a trailing `\r`).
public final class LineReader {
    public let name: String
    public private(set) var lineNumber = 0
    private let fd: Int32
    private let ownsFD: Bool
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false

    /// Reads standard input; `name` is what error messages call it.
    public init(fd: Int32 = 0, name: String = "stdin") {
        self.fd = fd
        self.name = name
        self.ownsFD = false
        buffer.reserveCapacity(1 << 16)
    }

    /// Opens `path` for reading; a missing file is exit 66.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw ToolError.noInput("\(path): no such file") }
            throw ToolError.noInput("\(path): cannot open: \(errnoString())")
        }
        self.fd = fd
        self.name = path
        self.ownsFD = true
    }

    deinit { if ownsFD { close(fd) } }

    /// The next line as raw bytes, or nil at the end of input.
    public func nextBytes() -> ArraySlice<UInt8>? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                var end = nl
                if end > start && buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[start..<end]
                start = nl + 1
                lineNumber += 1
                return line
            }
            if eof {
                guard start < buffer.count else { return nil }
                var end = buffer.count
                if buffer[end - 1] == 0x0D { end -= 1 }
                let line = buffer[start..<end]
                start = buffer.count
                lineNumber += 1
                return line
            }
            fill()
        }
    }

    /// The next line decoded as UTF-8; invalid UTF-8 is a data error naming the line.
    public func nextLine() throws -> String? {
        guard let bytes = nextBytes() else { return nil }
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw ToolError.data(name, line: lineNumber, "invalid UTF-8")
        }
        return s
    }

    private func fill() {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        let chunk = 1 << 16
        let old = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: chunk))
        var n: Int
        repeat {
            n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + old, chunk) }
        } while n < 0 && errno == EINTR
        if n <= 0 {
            buffer.removeLast(chunk)
            eof = true
        } else {
            buffer.removeLast(chunk - n)
        }
    }
}

/// Reads NDJSON records: one JSON object per line; blank lines are skipped.
public struct NDJSONReader {
    public let lines: LineReader

    public init(_ lines: LineReader) { self.lines = lines }

    /// The next record, or nil at the end. A line that is not a JSON object is a data error (65)
    /// naming the source and line.
    public mutating func next() throws -> JSON? {
        while let raw = lines.nextBytes() {
            if raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let value: JSON
            do {
                value = try JSON.parse(Data(raw))
            } catch let e as ToolError {
                throw ToolError.data(lines.name, line: lines.lineNumber, e.message)
            }
            guard case .object = value else {
                throw ToolError.data(lines.name, line: lines.lineNumber, "expected a JSON object")
            }
            return value
        }
        return nil
    }
}

/// Writes data lines to stdout, flushed per line. A closed stdout ends the tool quietly with 0
/// (`ner-infer < big.txt | head`); any other write error (a full disk) ends it with 74 and one
/// line naming the output, so results are never lost silently (docs/exit-codes.md).
public enum Output {
    public static func line(_ json: JSON) {
        var d = json.encoded()
        d.append(0x0A)
        write(d)
    }

    public static func line(_ s: String) {
        write(Data((s + "\n").utf8))
    }

    public static func write(_ data: Data) {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(1, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE { exit(0) }
                    failed(errno)
                }
                offset += n
            }
        }
    }

    /// Ends the process: one line on stderr naming stdout (and what it is) and the reason, exit 74.
    static func failed(_ code: Int32) -> Never {
        let tool = (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent }) ?? "ner"
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/1")).map { " (\($0))" } ?? ""
        let line = "\(tool): error: stdout\(target): write failed: \(errnoString(code))\n"
        _ = line.utf8CString.withUnsafeBufferPointer { Glibc.write(2, $0.baseAddress!, $0.count - 1) }
        exit(ExitStatus.ioError.rawValue)
    }
}

extension Output {
    /// Prints a pipeline record and, when a dispatcher is watching (`NER_STATUS_FILE` is set),
    /// appends it to that job's event log so every stage's transition reaches the registry.
    public static func record(_ json: JSON) {
        line(json)
        StatusLog.append(json)
    }
}

/// The per-job event log a dispatcher reads: one NDJSON line per stage record, appended with
/// `O_APPEND` (one write per line) and fsynced.
public enum StatusLog {
    public static let environmentKey = "NER_STATUS_FILE"

    public static func append(_ json: JSON) {
        guard let path = ProcessInfo.processInfo.environment[environmentKey], !path.isEmpty else { return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        var d = json.encoded()
        d.append(0x0A)
        _ = d.withUnsafeBytes { try? AtomicFile.writeAll(fd: fd, $0, path: path) }
        fsync(fd)
        close(fd)
    }
}
