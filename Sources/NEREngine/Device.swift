import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// Where the engine's math runs. The CPU path (OpenBLAS) is always there; CUDA is found at run
/// time through the NVIDIA driver library, so the toolchain builds and runs where CUDA is absent.
public enum ComputeDevice: String, Sendable, CaseIterable {
    case cpu, cuda

    /// The device named by a job's `device` field or `--device`, checked against this machine and
    /// build. Anything but a usable device is exit 69 (unavailable) with one line saying why.
    public static func select(_ name: String) throws -> ComputeDevice {
        guard let device = ComputeDevice(rawValue: name) else {
            throw ToolError.usage("--device must be cpu or cuda, got \(name)")
        }
        if device == .cpu { return .cpu }
        _ = try CUDARuntime.shared()
        return .cuda
    }
}

/// The CUDA driver API, opened with dlopen: the library is part of the NVIDIA driver, so its
/// presence says whether this machine can run CUDA at all.
enum CUDADriver {
    /// Library names tried in order; `NER_CUDA_DRIVER` (a path) replaces them, for tests and
    /// for drivers installed outside the loader's path.
    static var libraryNames: [String] {
        if let path = ProcessInfo.processInfo.environment["NER_CUDA_DRIVER"] { return [path] }
        return ["libcuda.so.1", "libcuda.so"]
    }

    private typealias Init = @convention(c) (UInt32) -> Int32
    private typealias Count = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    private typealias Get = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    private typealias Name = @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Int32

    /// The names of the GPUs the driver reports ("NVIDIA H200"). Throws exit 69 when the driver is
    /// missing, fails to start, or sees no device.
    static func devices() throws -> [String] {
        var reasons: [String] = []
        var handle: UnsafeMutableRawPointer?
        for name in libraryNames {
            handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { break }
            reasons.append(String(cString: dlerror()))
        }
        guard let handle else {
            throw ToolError.unavailable("--device cuda: no NVIDIA driver on this machine (\(reasons.first ?? "not found"))")
        }
        func symbol<T>(_ name: String, _ type: T.Type) throws -> T {
            guard let p = dlsym(handle, name) else {
                throw ToolError.unavailable("--device cuda: the NVIDIA driver library lacks \(name)")
            }
            return unsafeBitCast(p, to: type)
        }
        let cuInit = try symbol("cuInit", Init.self)
        let cuDeviceGetCount = try symbol("cuDeviceGetCount", Count.self)
        let cuDeviceGet = try symbol("cuDeviceGet", Get.self)
        let cuDeviceGetName = try symbol("cuDeviceGetName", Name.self)
        let status = cuInit(0)
        guard status == 0 else {
            // 100 is CUDA_ERROR_NO_DEVICE, the common case on a node without a GPU but with the driver.
            throw ToolError.unavailable("--device cuda: the NVIDIA driver found no usable GPU (cuInit returned \(status)"
                + (status == 100 ? ", no device" : "") + ")")
        }
        var count: Int32 = 0
        guard cuDeviceGetCount(&count) == 0, count > 0 else {
            throw ToolError.unavailable("--device cuda: the NVIDIA driver reports no GPU")
        }
        return (0..<count).map { ordinal in
            var device: Int32 = 0
            var name = [CChar](repeating: 0, count: 256)
            guard cuDeviceGet(&device, ordinal) == 0, cuDeviceGetName(&name, Int32(name.count), device) == 0 else {
                return "GPU \(ordinal)"
            }
            return String(cString: name)
        }
    }
}
