import Foundation
import NERCore
import NEREngine
import Testing
import TestSupport

/// Device selection: the CPU always works; `--device cuda` finds the NVIDIA driver and the CUDA
/// libraries at run time and, where one is missing, fails with exit 69 and one line saying what it
/// found, on every tool that takes `--device`.
@Suite struct DeviceTests {
    @Test func namesAreChecked() throws {
        #expect(try ComputeDevice.select("cpu") == .cpu)
        #expect(throws: ToolError.self) { try ComputeDevice.select("tpu") }
        do {
            _ = try ComputeDevice.select("tpu")
        } catch let e as ToolError {
            #expect(e.status == .usage)
        }
    }

    static let cc = ["/usr/bin/cc", "/usr/bin/clang", "/opt/swift/usr/bin/clang"].first(where: FileManager.default.isExecutableFile)

    /// A stand-in for the driver library, compiled now: `cuInit` returns `initStatus` and the driver
    /// reports one GPU named "Test GPU 9000".
    static func fakeDriver(in dir: TempDir, initStatus: Int) throws -> String {
        let cc = try #require(cc)
        let source = dir.write("fake-cuda-\(initStatus).c", """
            #include <string.h>
            int cuInit(unsigned flags) { return \(initStatus); }
            int cuDeviceGetCount(int *n) { *n = 1; return 0; }
            int cuDeviceGet(int *d, int ordinal) { *d = ordinal; return 0; }
            int cuDeviceGetName(char *name, int len, int d) { strncpy(name, "Test GPU 9000", len); return 0; }
            """)
        let library = dir.file("libcuda-fake-\(initStatus).so")
        let r = try run(cc, ["-shared", "-fPIC", "-o", library, source])
        try #require(r.status == 0, "\(cc) failed: \(r.stderr)")
        return library
    }

    @Test func cudaWithoutTheDriverFailsCleanly() throws {
        try expectRefused { _ in [("/nonexistent/libcuda.so.1", "the NVIDIA driver is not installed")] }
    }

    @Test(.enabled(if: DeviceTests.cc != nil, "needs a C compiler to build a stand-in driver"))
    func cudaWithADriverButNoGPUOrCuBLASFailsCleanly() throws {
        try expectRefused { dir in
            [(try Self.fakeDriver(in: dir, initStatus: 100), "found no usable GPU (cuInit returned 100, no device)"),
             (try Self.fakeDriver(in: dir, initStatus: 0), "found Test GPU 9000, but cuBLAS (part of the CUDA toolkit) is not installed")]
        }
    }

    /// Every tool that takes `--device cuda`, with each driver: exit 69, one line saying what it found.
    func expectRefused(drivers: (TempDir) throws -> [(library: String, says: String)]) throws {
        let dir = TempDir("device")
        defer { dir.remove() }
        let train = dir.write("train.txt", Synthetic.corpus(8, seed: 1))
        let trained = try run("ner-train", ["--output", dir.file("model"), "--quiet"],
                              stdin: Synthetic.job(train: train, dev: nil, epochs: 1))
        try #require(trained.status == 0, "\(trained.stderr)")
        let invocations: [(String, [String])] = [
            ("ner-train", ["--train", train, "--output", dir.file("m2"), "--epochs", "1", "--device", "cuda"]),
            ("ner-infer", ["--model", dir.file("model"), "--device", "cuda"]),
            ("ner-serve", ["--model", dir.file("model"), "--port", "0", "--device", "cuda"]),
        ]
        for (library, says) in try drivers(dir) {
            for (tool, args) in invocations {
                let r = try run(tool, args, stdin: tool == "ner-infer" ? "Alice visited Paris .\n" : "", env: ["NER_CUDA_DRIVER": library, "NER_CUBLAS": "/nonexistent/libcublas.so.12"])
                #expect(r.status == 69, "\(tool) with \(library): \(r.stderr)")
                #expect(r.stderr.hasPrefix("\(tool): error: --device cuda: ") && r.stderr.contains(says), "\(tool): \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1, "\(tool): \(r.stderr)")
                #expect(r.stdout.isEmpty)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("m2")), "a refused training run wrote its output folder")
    }
}
