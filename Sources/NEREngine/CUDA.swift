import Foundation
import NERCore
#if canImport(Glibc)
import Glibc
#endif

/// A device address (CUdeviceptr).
typealias DeviceAddress = UInt64

/// The three NVIDIA libraries the CUDA backend uses, opened with dlopen so that nothing about CUDA
/// is needed to build or run the toolchain: the driver (memory, modules, launches), cuBLAS (every
/// matrix product) and NVRTC (compiles `CUDAKernels.source` for the GPU at hand when the backend
/// starts). Each can be pointed at a path: `NER_CUDA_DRIVER`, `NER_CUBLAS`, `NER_NVRTC`.
final class CUDARuntime: @unchecked Sendable {
    let deviceName: String

    private typealias Status = Int32
    private let context: OpaquePointer
    private let blas: OpaquePointer
    private var kernels: [OpaquePointer] = []

    // Driver API.
    private let cuCtxSetCurrent: @convention(c) (OpaquePointer?) -> Status
    private let cuMemAlloc: @convention(c) (UnsafeMutablePointer<DeviceAddress>, Int) -> Status
    private let cuMemFree: @convention(c) (DeviceAddress) -> Status
    private let cuMemcpyHtoD: @convention(c) (DeviceAddress, UnsafeRawPointer, Int) -> Status
    private let cuMemcpyDtoH: @convention(c) (UnsafeMutableRawPointer, DeviceAddress, Int) -> Status
    private let cuMemsetD32: @convention(c) (DeviceAddress, UInt32, Int) -> Status
    private let cuLaunchKernel: @convention(c) (OpaquePointer, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                                                OpaquePointer?, UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                                UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Status
    private let cuGetErrorString: @convention(c) (Status, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Status
    // cuBLAS.
    private let cublasSgemm: @convention(c) (OpaquePointer, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>,
                                             DeviceAddress, Int32, DeviceAddress, Int32, UnsafePointer<Float>,
                                             DeviceAddress, Int32) -> Status

    /// The process's runtime: opens the driver, picks GPU 0, loads cuBLAS and compiles the kernels
    /// on first use. Every way this can fail is exit 69 with one line naming what is missing.
    static func shared() throws -> CUDARuntime {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let opened { return opened }
        let driver = try CUDADriver.open()
        let runtime = try CUDARuntime(driver: driver, deviceName: try CUDADriver.devices(driver)[0])
        opened = runtime
        return runtime
    }
    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var opened: CUDARuntime?

    private init(driver: Library, deviceName: String) throws {
        self.deviceName = deviceName
        let cublas = try Library.open(env: "NER_CUBLAS", ["libcublas.so.12", "libcublas.so.13", "libcublas.so.11", "libcublas.so"],
                                      what: "cuBLAS (part of the CUDA toolkit)", gpu: deviceName)
        let nvrtc = try Library.open(env: "NER_NVRTC", ["libnvrtc.so.12", "libnvrtc.so.13", "libnvrtc.so.11.2", "libnvrtc.so"],
                                     what: "NVRTC (part of the CUDA toolkit)", gpu: deviceName)
        cuCtxSetCurrent = try driver.symbol("cuCtxSetCurrent")
        cuMemAlloc = try driver.symbol("cuMemAlloc_v2")
        cuMemFree = try driver.symbol("cuMemFree_v2")
        cuMemcpyHtoD = try driver.symbol("cuMemcpyHtoD_v2")
        cuMemcpyDtoH = try driver.symbol("cuMemcpyDtoH_v2")
        cuMemsetD32 = try driver.symbol("cuMemsetD32_v2")
        cuLaunchKernel = try driver.symbol("cuLaunchKernel")
        cuGetErrorString = try driver.symbol("cuGetErrorString")
        cublasSgemm = try cublas.symbol("cublasSgemm_v2")

        let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Status = try driver.symbol("cuDeviceGet")
        let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Status =
            try driver.symbol("cuDeviceGetAttribute")
        let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32) -> Status =
            try driver.symbol("cuDevicePrimaryCtxRetain")
        var device: Int32 = 0, major: Int32 = 0, minor: Int32 = 0
        var ctx: OpaquePointer?
        let errorString = cuGetErrorString
        func check(_ status: Status, _ what: String) throws {
            if status != 0 { throw ToolError.unavailable("--device cuda: \(what) failed on \(deviceName): \(CUDARuntime.describe(status, errorString))") }
        }
        try check(cuDeviceGet(&device, 0), "cuDeviceGet")
        // 75 and 76: CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR and _MINOR.
        try check(cuDeviceGetAttribute(&major, 75, device), "cuDeviceGetAttribute")
        try check(cuDeviceGetAttribute(&minor, 76, device), "cuDeviceGetAttribute")
        try check(cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain")
        context = ctx!
        try check(cuCtxSetCurrent(context), "cuCtxSetCurrent")

        let cublasCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status = try cublas.symbol("cublasCreate_v2")
        let cublasSetMathMode: @convention(c) (OpaquePointer, Int32) -> Status = try cublas.symbol("cublasSetMathMode")
        var handle: OpaquePointer?
        let created = cublasCreate(&handle)
        guard created == 0, let handle else {
            throw ToolError.unavailable("--device cuda: cuBLAS could not start on \(deviceName) (status \(created))")
        }
        blas = handle
        // Plain float32 products (no TF32), so GPU and CPU runs agree to float32 rounding.
        _ = cublasSetMathMode(handle, 0)

        // Compute capability as major * 10 + minor (90 for an H100/H200).
        let image = try CUDARuntime.compile(nvrtc, capability: Int(major) * 10 + Int(minor), gpu: deviceName)
        let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafeRawPointer) -> Status =
            try driver.symbol("cuModuleLoadData")
        let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer, UnsafePointer<CChar>) -> Status =
            try driver.symbol("cuModuleGetFunction")
        var module: OpaquePointer?
        try check(image.withUnsafeBytes { cuModuleLoadData(&module, $0.baseAddress!) }, "loading the compiled kernels")
        for k in CUDAKernel.allCases {
            var f: OpaquePointer?
            try check(cuModuleGetFunction(&f, module!, k.rawValue), "finding kernel \(k.rawValue)")
            kernels.append(f!)
        }
    }

    /// NVRTC: kernel source to PTX for this GPU's architecture, which the driver then compiles.
    private static func compile(_ nvrtc: Library, capability: Int, gpu: String) throws -> [UInt8] {
        typealias Program = OpaquePointer
        let create: @convention(c) (UnsafeMutablePointer<Program?>, UnsafePointer<CChar>, UnsafePointer<CChar>, Int32,
                                    UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Status =
            try nvrtc.symbol("nvrtcCreateProgram")
        let compileProgram: @convention(c) (Program, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Status =
            try nvrtc.symbol("nvrtcCompileProgram")
        let ptxSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Status = try nvrtc.symbol("nvrtcGetPTXSize")
        let getPTX: @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Status = try nvrtc.symbol("nvrtcGetPTX")
        let logSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Status = try nvrtc.symbol("nvrtcGetProgramLogSize")
        let getLog: @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Status = try nvrtc.symbol("nvrtcGetProgramLog")
        let destroy: @convention(c) (UnsafeMutablePointer<Program?>) -> Status = try nvrtc.symbol("nvrtcDestroyProgram")

        // An NVRTC older than the GPU does not know its architecture; PTX for an older one still runs.
        var lastLog = ""
        for arch in [capability] + [90, 80, 70].filter({ $0 < capability }) {
            var program: Program?
            guard create(&program, CUDAKernels.source, "ner_kernels.cu", 0, nil, nil) == 0, let program else {
                throw ToolError.unavailable("--device cuda: NVRTC could not create a program")
            }
            defer { var p: Program? = program; _ = destroy(&p) }
            let options = ["--gpu-architecture=compute_\(arch)", "--std=c++14"]
            let cOptions = options.map { strdup($0) }
            defer { cOptions.forEach { Glibc.free($0) } }
            let status = cOptions.map { UnsafePointer($0) }.withUnsafeBufferPointer {
                compileProgram(program, Int32(options.count), $0.baseAddress)
            }
            if status == 0 {
                var size = 0
                _ = ptxSize(program, &size)
                var ptx = [UInt8](repeating: 0, count: size)
                _ = ptx.withUnsafeMutableBufferPointer { getPTX(program, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self)) }
                return ptx
            }
            var size = 0
            _ = logSize(program, &size)
            var log = [CChar](repeating: 0, count: max(size, 1))
            _ = getLog(program, &log)
            lastLog = String(cString: log).split(separator: "\n").first.map(String.init) ?? "status \(status)"
        }
        throw ToolError.unavailable("--device cuda: NVRTC could not compile the engine's kernels for \(gpu): \(lastLog)")
    }

    private static func describe(_ status: Status, _ errorString: @convention(c) (Status, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Status) -> String {
        var text: UnsafePointer<CChar>?
        if errorString(status, &text) == 0, let text { return String(cString: text) }
        return "CUDA error \(status)"
    }

    /// Errors after start-up (out of memory, a failed launch) end the run: exit 1 with the reason.
    private func check(_ status: Status, _ what: String) throws {
        if status != 0 { throw ToolError.failure("cuda: \(what) failed: \(CUDARuntime.describe(status, cuGetErrorString))") }
    }

    /// Makes this runtime's context current on the calling thread (each host thread has its own).
    func bind() throws { try check(cuCtxSetCurrent(context), "cuCtxSetCurrent") }

    func allocate(bytes: Int) throws -> DeviceAddress {
        var address: DeviceAddress = 0
        try check(cuMemAlloc(&address, max(bytes, 4)), "allocating \(bytes) bytes of GPU memory")
        return address
    }

    /// Frees device memory; callable from any thread (a model released after a reload is freed
    /// wherever its last reference goes), so it makes the context current first.
    func free(_ address: DeviceAddress) {
        _ = cuCtxSetCurrent(context)
        _ = cuMemFree(address)
    }

    func upload(_ source: UnsafeRawPointer, to address: DeviceAddress, bytes: Int) throws {
        if bytes > 0 { try check(cuMemcpyHtoD(address, source, bytes), "copying to the GPU") }
    }

    func download(_ address: DeviceAddress, to destination: UnsafeMutableRawPointer, bytes: Int) throws {
        if bytes > 0 { try check(cuMemcpyDtoH(destination, address, bytes), "copying from the GPU") }
    }

    /// Sets `count` 32-bit words to zero (0.0 as a float).
    func zero(_ address: DeviceAddress, words count: Int) throws {
        if count > 0 { try check(cuMemsetD32(address, 0, count), "clearing GPU memory") }
    }

    /// Runs `kernel` with one thread per item, 256 to a block.
    func launch(_ kernel: CUDAKernel, items: Int, _ args: KernelArgument...) throws {
        guard items > 0 else { return }
        let block = 256, blocks = (items + block - 1) / block
        try withUnsafeTemporaryAllocation(of: UInt64.self, capacity: args.count) { slots in
            try withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: args.count) { pointers in
                for (i, a) in args.enumerated() {
                    switch a {
                    case .int(let v): slots[i] = UInt64(UInt32(bitPattern: Int32(v)))
                    case .float(let v): slots[i] = UInt64(v.bitPattern)
                    case .address(let v), .u64(let v): slots[i] = v
                    }
                    pointers[i] = UnsafeMutableRawPointer(slots.baseAddress! + i)
                }
                try check(cuLaunchKernel(kernels[kernel.index], UInt32(blocks), 1, 1, UInt32(block), 1, 1, 0, nil,
                                         pointers.baseAddress!, nil), "launching \(kernel.rawValue)")
            }
        }
    }

    /// C (m×n) = op(A) · op(B) + beta·C on row-major matrices, as `gemm` does on the CPU. cuBLAS is
    /// column-major, where a row-major C is Cᵀ, so the product is computed as Cᵀ = op(B)ᵀ · op(A)ᵀ.
    func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
              _ a: DeviceAddress, _ lda: Int, _ b: DeviceAddress, _ ldb: Int,
              _ beta: Float, _ c: DeviceAddress, _ ldc: Int) throws {
        if m == 0 || n == 0 { return }
        var one: Float = 1, betaValue = beta
        let status = cublasSgemm(blas, transB ? 1 : 0, transA ? 1 : 0, Int32(n), Int32(m), Int32(k), &one,
                                 b, Int32(ldb), a, Int32(lda), &betaValue, c, Int32(ldc))
        if status != 0 { throw ToolError.failure("cuda: cublasSgemm failed (status \(status))") }
    }
}

/// One kernel parameter, passed by value.
enum KernelArgument {
    case int(Int)
    case float(Float)
    case address(DeviceAddress)
    case u64(UInt64)
}

/// A dlopen'ed library.
struct Library {
    let handle: UnsafeMutableRawPointer
    let name: String

    /// The first of `names` that loads (or the path in `env`), else exit 69 naming `what`.
    static func open(env: String, _ names: [String], what: String, gpu: String? = nil) throws -> Library {
        var candidates = names
        if let path = ProcessInfo.processInfo.environment[env] {
            candidates = [path]
        } else {
            // The toolkit's own folder, where its installer leaves it off the loader's path.
            let home = ProcessInfo.processInfo.environment["CUDA_HOME"] ?? ProcessInfo.processInfo.environment["CUDA_PATH"] ?? "/usr/local/cuda"
            candidates += names.map { "\(home)/lib64/\($0)" }
        }
        var reason = ""
        for name in candidates {
            if let h = dlopen(name, RTLD_NOW | RTLD_LOCAL) { return Library(handle: h, name: name) }
            if reason.isEmpty { reason = String(cString: dlerror()) }
        }
        let found = gpu.map { "found \($0), but " } ?? ""
        throw ToolError.unavailable("--device cuda: \(found)\(what) is not installed (\(reason)); set \(env) to its path")
    }

    func symbol<T>(_ name: String) throws -> T {
        guard let p = dlsym(handle, name) else {
            throw ToolError.unavailable("--device cuda: \(self.name) lacks \(name)")
        }
        return unsafeBitCast(p, to: T.self)
    }
}

/// GPU memory that grows to the largest size asked for and is then reused, like `Scratch`.
final class DeviceScratch {
    private let runtime: CUDARuntime
    private let elementSize: Int
    private(set) var address: DeviceAddress = 0
    private var capacity = 0

    init(_ runtime: CUDARuntime, elementSize: Int = 4) {
        self.runtime = runtime
        self.elementSize = elementSize
    }

    deinit { if address != 0 { runtime.free(address) } }

    /// Room for `count` elements (contents not kept); returns the address.
    @discardableResult
    func reserve(_ count: Int) throws -> DeviceAddress {
        if count > capacity {
            if address != 0 { runtime.free(address) }
            capacity = count + count / 4
            address = try runtime.allocate(bytes: capacity * elementSize)
        }
        return address
    }

    /// Room for `count` elements, all zero.
    @discardableResult
    func zeroed(_ count: Int) throws -> DeviceAddress {
        let a = try reserve(count)
        try runtime.zero(a, words: count * elementSize / 4)
        return a
    }

    /// The address of element `i`.
    func at(_ i: Int) -> DeviceAddress { address + DeviceAddress(i * elementSize) }
}
