/// The exit codes every tool uses, in the sysexits tradition (docs/exit-codes.md).
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case success = 0
    /// The work failed: training diverged, a model failed verification, a job failed.
    case failure = 1
    /// Bad flag or bad combination of flags.
    case usage = 64
    /// Bad input data: malformed JSON line, broken CoNLL file, tampered tarball.
    case dataError = 65
    /// An input file is missing, or is not a regular file.
    case noInput = 66
    /// A service is unavailable: Slurm down, registry locked past its timeout, no GPU.
    case unavailable = 69
    /// Writing the results failed: stdout on a full disk, a broken device.
    case ioError = 74
    /// Temporary failure; trying again may work.
    case tempFail = 75

    public var meaning: String {
        switch self {
        case .success: return "success"
        case .failure: return "the work failed (training diverged, verification failed, a job failed)"
        case .usage: return "usage error (bad flag or argument)"
        case .dataError: return "bad input data (malformed JSON, broken CoNLL file, tampered tarball)"
        case .noInput: return "an input file is missing or is not a regular file"
        case .unavailable: return "a service is unavailable (Slurm down, registry locked, no GPU)"
        case .ioError: return "writing the results to stdout failed (full disk, I/O error)"
        case .tempFail: return "temporary failure, try again"
        }
    }
}

/// An error meant for the user: one line, already naming the file, line and problem.
public struct ToolError: Error, CustomStringConvertible, Sendable {
    public var status: ExitStatus
    public var message: String

    public init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    public static func usage(_ m: String) -> ToolError { ToolError(.usage, m) }
    public static func data(_ m: String) -> ToolError { ToolError(.dataError, m) }
    public static func noInput(_ m: String) -> ToolError { ToolError(.noInput, m) }
    public static func failure(_ m: String) -> ToolError { ToolError(.failure, m) }
    public static func unavailable(_ m: String) -> ToolError { ToolError(.unavailable, m) }

    /// `path:line: message`, the form every error that points into a file takes.
    public static func data(_ file: String, line: Int, _ m: String) -> ToolError {
        ToolError(.dataError, "\(file):\(line): \(m)")
    }
}

/// A user-given value as an error message shows it: whole when short, else its first `limit`
/// characters and its size, so a 10 MB name never floods the terminal or a log.
public func clipped(_ value: String, limit: Int = 80) -> String {
    guard value.count > limit else { return value }
    return "\(value.prefix(limit))… (\(value.utf8.count) bytes)"
}
