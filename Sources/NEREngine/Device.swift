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

/// The first questions asked of the CUDA driver: does it start, and which GPUs does it see. The
/// driver library comes with the NVIDIA driver, so its presence says whether this machine can run
/// CUDA at all.
enum CUDADriver {
    static func open() throws -> Library {
        try Library.open(env: "NER_CUDA_DRIVER", ["libcuda.so.1", "libcuda.so"], what: "the NVIDIA driver")
    }

    /// The names of the GPUs the driver reports ("NVIDIA H200"). Throws exit 69 when the driver
    /// fails to start or sees no device.
    static func devices(_ driver: Library) throws -> [String] {
        let cuInit: @convention(c) (UInt32) -> Int32 = try driver.symbol("cuInit")
        let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32 = try driver.symbol("cuDeviceGetCount")
        let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32 = try driver.symbol("cuDeviceGet")
        let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Int32 = try driver.symbol("cuDeviceGetName")
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
