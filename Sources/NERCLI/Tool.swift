import ArgumentParser
import Foundation
import Logging
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// Options every tool takes.
public struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("State folder (spool, registry, artifacts). Default: $NER_HOME, else ~/.ner.",
                                            valueName: "DIR"))
    public var home: String?

    @Option(name: .long, help: ArgumentHelp("Log format on stderr: plain or json.", valueName: "FORMAT"))
    public var logFormat: LogFormat = .plain

    @Flag(name: [.short, .long], help: "Only errors on stderr.")
    public var quiet = false

    public init() {}

    public var resolvedHome: Home { Home.resolve(home) }
}

/// `--device` in every tool that runs the engine.
public let deviceHelp = "cpu or cuda. cuda needs an NVIDIA GPU with its driver and the CUDA toolkit's cuBLAS and NVRTC "
    + "libraries, all found at run time (NER_CUDA_DRIVER, NER_CUBLAS, NER_NVRTC name them where the loader does not "
    + "look); without them it exits 69 saying what is missing."

/// The exit-code table every `--help` ends with.
public let exitCodeHelp: String = {
    var s = "EXIT STATUS\n"
    for c in ExitStatus.allCases {
        s += "  " + String(c.rawValue).padding(toLength: 4, withPad: " ", startingAt: 0) + c.meaning + "\n"
    }
    s += "  A closed stdout (e.g. piping into `head`) ends the tool quietly with 0; any\n"
    s += "  other error writing stdout (a full disk) is 74. docs/exit-codes.md says when\n"
    s += "  each tool uses each code."
    return s
}()

/// Runs a tool's body: sets up logging and SIGPIPE, turns a `ToolError` into one line on stderr
/// (`ner-x: error: ...`) and its documented exit code.
public func runTool(_ name: String, _ options: CommonOptions, _ body: (Logger) throws -> Void) throws {
    signal(SIGPIPE, SIG_IGN)
    Logs.bootstrap(tool: name, format: options.logFormat, quiet: options.quiet)
    let log = Logger(label: name)
    do {
        try body(log)
    } catch let e as ToolError {
        printError(name, e.message)
        throw ExitCode(e.status.rawValue)
    }
}

public func printError(_ tool: String, _ message: String) {
    FileHandle.standardError.write(Data("\(tool): error: \(message)\n".utf8))
}
