import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Helpers for tests that drive the real executables.
public enum TestTools {
    /// The folder holding the built products (the test binary lives there too).
    public static let productsDir: String = {
        if let dir = ProcessInfo.processInfo.environment["NER_BIN_DIR"] { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = (exe as NSString).deletingLastPathComponent
        // XCTest on Linux runs <products>/<pkg>PackageTests.xctest; Swift Testing may run from a sub-bundle.
        while !dir.isEmpty && dir != "/" && !FileManager.default.fileExists(atPath: dir + "/ner-queue") {
            dir = (dir as NSString).deletingLastPathComponent
        }
        return dir
    }()

    public static func path(_ tool: String) -> String { productsDir + "/" + tool }

    /// The sanitizer the tools and tests were built with (`make test-asan`, `make test-tsan`), under
    /// which peak-memory bounds do not hold.
    public static let sanitizer = ProcessInfo.processInfo.environment["NER_SANITIZER"]

    /// `../shared/data` beside the checkout, if present (CoNLL-2003, GloVe, Wikigold).
    public static let sharedData: String? = {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        let p = dir.deletingLastPathComponent().appendingPathComponent("shared/data").path
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }()

    /// The repository root (for examples/).
    public static let repoRoot: String = {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        return dir.path
    }()
}

/// A fresh folder under /tmp, removed by `remove()`.
public struct TempDir {
    public let path: String

    public init(_ label: String = "ner-test") {
        let p = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        path = p
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    public func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    public func write(_ name: String, _ content: String) -> String {
        let p = file(name)
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        try! content.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
}

public struct RunResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var lines: [String] { stdout.split(separator: "\n").map(String.init) }
}

/// Runs a tool to completion with `stdin` as input and returns its exit status and output.
public func run(_ tool: String, _ args: [String], stdin: String = "", env: [String: String] = [:]) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool.hasPrefix("/") ? tool : TestTools.path(tool))
    p.arguments = args
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
    p.standardInput = inPipe
    p.standardOutput = outPipe
    p.standardError = errPipe
    try p.run()
    // Read both streams concurrently so a chatty child never blocks on a full pipe.
    var out = Data(), err = Data()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { out = outPipe.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: group) { err = errPipe.fileHandleForReading.readDataToEndOfFile() }
    inPipe.fileHandleForWriting.write(Data(stdin.utf8))
    try? inPipe.fileHandleForWriting.close()
    group.wait()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                     stderr: String(decoding: err, as: UTF8.self))
}

/// Runs a tool with stdin read from the file `input` and stdout written to the file `output` (so the
/// test holds none of it in memory) and returns its exit status (-1 if killed by a signal) and its
/// peak resident memory in KiB. The peak is the child's VmHWM in /proc, sampled every 10 ms while it
/// runs: the rusage that wait4 reports would also count the test process's own peak, which a
/// spawned child inherits until it execs.
public func runMeasuringMemory(_ tool: String, _ args: [String], input: String, output: String) throws -> (status: Int32, peakKiB: Int) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let path = TestTools.path(tool)
    let argv = ([path] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard rc == 0 else { throw NSError(domain: "spawn", code: Int(rc)) }
    var peak = 0
    var status: Int32 = 0
    while true {
        let done = waitpid(pid, &status, WNOHANG)
        if done == pid || (done < 0 && errno != EINTR) { break }
        // VmHWM only grows, so the last sample before exit is the peak up to then.
        if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
            peak = max(peak, kib)
        }
        usleep(10_000)
    }
    let exited = status & 0x7F == 0
    return (exited ? (status >> 8) & 0xFF : -1, peak)
}

/// The CUDA libraries for tests: on a machine without a GPU, `Tests/CUDAStandIn` (a CPU stand-in
/// for the driver, cuBLAS and NVRTC, built on first use) through the `NER_*` variables the engine
/// reads; with `NER_TEST_REAL_CUDA=1`, the machine's own.
public enum CUDAStandIn {
    /// Variables for child processes (also set in this process); nil when the stand-in cannot be built.
    public static let environment: [String: String]? = {
        if ProcessInfo.processInfo.environment["NER_TEST_REAL_CUDA"] == "1" { return [:] }
        let source = TestTools.repoRoot + "/Tests/CUDAStandIn"
        guard let cxx = ["/usr/bin/c++", "/usr/bin/g++", "/opt/swift/usr/bin/clang++"].first(where: FileManager.default.isExecutableFile) else {
            problem = "no C++ compiler"
            return nil
        }
        let dir = TempDir("cuda-standin")
        atexit { if let lib = CUDAStandIn.environment?["NER_CUBLAS"] { unlink(lib); rmdir((lib as NSString).deletingLastPathComponent) } }
        let library = dir.file("libcuda-standin.so")
        // cblas.h lives where the distribution's OpenBLAS package puts it.
        let cflags = (try? run("/usr/bin/pkg-config", ["--cflags", "openblas"]))
            .map { $0.stdout.split(whereSeparator: \.isWhitespace).map(String.init) } ?? []
        let built = try? run(cxx, ["-std=c++17", "-O2", "-shared", "-fPIC"] + cflags
                                   + ["-o", library, source + "/cuda_standin.cpp", "-lopenblas", "-ldl"])
        guard let built, built.status == 0 else {
            problem = "\(cxx) failed: \(built?.stderr ?? "did not run")"
            return nil
        }
        let env = ["NER_CUDA_DRIVER": library, "NER_CUBLAS": library, "NER_NVRTC": library,
                   "NER_CUDA_STANDIN_PRELUDE": source + "/kernel_prelude.h", "NER_CUDA_STANDIN_CXX": cxx]
        for (k, v) in env { setenv(k, v, 1) }
        return env
    }()

    /// Why `environment` is nil.
    nonisolated(unsafe) public static var problem = ""
}

/// Where a child's stdout goes in `runWithStdout`.
public enum StdoutTarget {
    /// A file opened for writing, such as /dev/full (every write fails with ENOSPC).
    case file(String)
    /// A pipe whose read end is already closed (every write fails with EPIPE).
    case closedPipe
}

/// Runs a tool with stdin read from the file `input` and stdout sent to `stdout`; returns its exit
/// status (-1 if killed by a signal) and its stderr.
public func runWithStdout(_ tool: String, _ args: [String], input: String = "/dev/null", stdout: StdoutTarget,
                          env: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var err: [Int32] = [0, 0], out: [Int32] = [-1, -1]
    guard pipe(&err) == 0 else { throw NSError(domain: "pipe", code: Int(errno)) }
    posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0)
    switch stdout {
    case .file(let path):
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY, 0)
    case .closedPipe:
        guard pipe(&out) == 0 else { throw NSError(domain: "pipe", code: Int(errno)) }
        close(out[0])  // no reader from the start, so the first write fails
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_addclose(&actions, out[1])
    }
    posix_spawn_file_actions_adddup2(&actions, err[1], 2)
    posix_spawn_file_actions_addclose(&actions, err[0])
    posix_spawn_file_actions_addclose(&actions, err[1])
    let path = TestTools.path(tool)
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    let argv = ([path] + args).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
    close(err[1])
    if out[1] >= 0 { close(out[1]) }
    guard rc == 0 else { close(err[0]); throw NSError(domain: "spawn", code: Int(rc)) }
    let stderr = FileHandle(fileDescriptor: err[0], closeOnDealloc: true).readDataToEndOfFile()
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exited = status & 0x7F == 0
    return (exited ? (status >> 8) & 0xFF : -1, String(decoding: stderr, as: UTF8.self))
}

/// Mounting file systems for the tests that need a full or read-only disk: needs root (or
/// CAP_SYS_ADMIN); `canMount` says whether this machine allows it, for `.enabled(if:)`.
public enum Mounts {
    public static let canMount: Bool = {
        let dir = TempDir("mount-probe")
        defer { dir.remove() }
        guard mount("tmpfs", dir.path, "tmpfs", 0, "size=64k") == 0 else { return false }
        umount2(dir.path, Int32(MNT_DETACH))
        return true
    }()

    /// Mounts a tmpfs of `size` (e.g. "96k") on `path`, created if needed.
    public static func tmpfs(_ path: String, size: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(size)") == 0 else {
            throw NSError(domain: "mount tmpfs on \(path): \(String(cString: strerror(errno)))", code: Int(errno))
        }
    }

    /// Makes the file system mounted on `path` read-only.
    public static func remountReadOnly(_ path: String) throws {
        guard mount("tmpfs", path, "tmpfs", UInt(MS_REMOUNT | MS_RDONLY), nil) == 0 else {
            throw NSError(domain: "remount \(path) read-only: \(String(cString: strerror(errno)))", code: Int(errno))
        }
    }

    public static func unmount(_ path: String) {
        umount2(path, Int32(MNT_DETACH))
    }
}
