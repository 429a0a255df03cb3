// cuda_standin.cpp — a CPU stand-in for the CUDA driver API, cuBLAS and NVRTC,
// used by the engine's tests on machines without a GPU.
//
// The CUDA backend reaches NVIDIA's libraries only through dlopen/dlsym of a
// small C API subset; the tests point it at this one library instead, which
// implements that subset on the host:
//   * device memory is host memory (a CUdeviceptr holds a host address).
//     Live allocations are tracked so that copies, memsets, frees and GEMM
//     operands outside them fail loudly, and fresh memory is filled with a
//     NaN pattern so reads of uninitialised memory show up in results;
//   * cuBLAS SGEMM is forwarded to OpenBLAS (column-major, like cuBLAS);
//   * NVRTC "compiles" CUDA C by running the host C++ compiler on it with
//     kernel_prelude.h force-included, producing a shared library; the "PTX"
//     is that library's path, which cuModuleLoadData dlopens;
//   * kernels run one thread at a time, block after block, so they must not
//     use shared memory or __syncthreads.
//
// Build:
//   c++ -std=c++17 -O2 -shared -fPIC $(pkg-config --cflags openblas)
//       -o libcuda-standin.so cuda_standin.cpp -lopenblas -ldl
//
// Environment:
//   NER_CUDA_STANDIN_PRELUDE  path of kernel_prelude.h (required to compile)
//   NER_CUDA_STANDIN_CXX      compiler for kernels (default: c++)

#include <cblas.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

typedef unsigned long long CUdeviceptr;

// ---- Status codes (values as in the real headers) ----------------------------
enum : int {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
};

enum : int {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
};

enum : int {
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_OUT_OF_MEMORY = 1,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_COMPILATION = 6,
    NVRTC_ERROR_INTERNAL_ERROR = 11,
};

constexpr size_t kTotalMemory = size_t(8) << 30;  // what cuDeviceTotalMem reports
constexpr size_t kAlignment = 64;
constexpr uint32_t kUninitialisedPattern = 0x7FC00001u;  // a quiet NaN

// ---- State ----------------------------------------------------------------------
std::atomic<bool> g_initialised{false};
std::atomic<long long> g_htod{0}, g_dtoh{0}, g_launches{0}, g_gemms{0};

// Live allocations: base address -> size in bytes. Never destroyed, as a real driver's state is
// not: a process may free device memory on another thread while exit() runs static destructors,
// and a destroyed map there corrupts the heap.
std::mutex g_memMutex;
std::map<uintptr_t, size_t>& g_allocations = *new std::map<uintptr_t, size_t>();

// True when [p, p + bytes) lies inside one live allocation. Zero-length
// ranges are accepted anywhere: they touch no memory.
bool inLiveAllocation(uintptr_t p, size_t bytes) {
    if (bytes == 0) return true;
    std::lock_guard<std::mutex> lock(g_memMutex);
    auto it = g_allocations.upper_bound(p);
    if (it == g_allocations.begin()) return false;
    --it;
    uintptr_t base = it->first;
    size_t size = it->second;
    return p >= base && p - base <= size && bytes <= size - (p - base);
}

// Any non-null address works as the (single) primary context.
int g_primaryContext = 0;

// A loaded kernel library. Function handles point into `functions` and stay
// valid until the module is unloaded.
typedef void (*Launcher)(void**);
typedef void (*GridSetter)(const unsigned*);

struct Function {
    Launcher launch;
    GridSetter setGrid;
};

struct Module {
    void* library;
    GridSetter setGrid;
    std::map<std::string, Function*> functions;
};

struct Program {
    std::string source;
    std::string name;
    std::vector<std::pair<std::string, std::string>> headers;  // name, contents
    std::string log;
    std::string ptx;  // path of the compiled library once compiled
};

struct BlasHandle {
    int mathMode = 0;
    void* stream = nullptr;
};

// Temp dirs created by nvrtcCompileProgram. They must outlive the program
// object (cuModuleLoadData reads the library after nvrtcDestroyProgram), so
// they are removed when this library is unloaded.
struct TempDirs {
    std::mutex mutex;
    std::vector<std::pair<std::string, std::vector<std::string>>> dirs;  // dir, files
    ~TempDirs() {
        for (auto& d : dirs) {
            for (auto& f : d.second) unlink((d.first + "/" + f).c_str());
            rmdir(d.first.c_str());
        }
    }
} g_tempDirs;

const char* cudaErrorMeaning(int status) {
    switch (status) {
        case 0: return "no error";
        case 1: return "invalid argument";
        case 2: return "out of memory";
        case 3: return "initialization error (cuInit not called)";
        case 4: return "driver shutting down";
        case 100: return "no CUDA-capable device";
        case 101: return "invalid device ordinal";
        case 200: return "device kernel image is invalid";
        case 201: return "invalid device context";
        case 209: return "no kernel image is available for execution on the device";
        case 218: return "a PTX JIT compilation failed";
        case 400: return "invalid resource handle";
        case 500: return "named symbol not found";
        case 700: return "an illegal memory access was encountered";
        case 701: return "too many resources requested for launch";
        case 719: return "unspecified launch failure";
        case 999: return "unknown error";
        default: return "unrecognised error code";
    }
}

bool writeFile(const std::string& path, const std::string& contents) {
    std::ofstream out(path, std::ios::binary);
    out << contents;
    return bool(out);
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Number of bytes spanned by a column-major rows x cols matrix with leading
// dimension ld (0 when it is empty and therefore never read).
size_t matrixBytes(int rows, int cols, int ld) {
    if (rows <= 0 || cols <= 0) return 0;
    return (size_t(cols - 1) * size_t(ld) + size_t(rows)) * sizeof(float);
}

}  // namespace

extern "C" {

// =============================================================================
// Driver API
// =============================================================================

int cuInit(unsigned flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;  // as the real driver
    g_initialised = true;
    return CUDA_SUCCESS;
}

int cuDeviceGetCount(int* count) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

int cuDeviceGet(int* device, int ordinal) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

int cuDeviceGetName(char* name, int len, int device) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, size_t(len), "%s", "CUDA stand-in (CPU)");
    return CUDA_SUCCESS;
}

int cuDeviceGetAttribute(int* value, int attribute, int device) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    switch (attribute) {
        case 75: *value = 9; break;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
        case 76: *value = 0; break;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
        default: *value = 0; break;
    }
    return CUDA_SUCCESS;
}

int cuDeviceTotalMem_v2(size_t* bytes, int device) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = kTotalMemory;
    return CUDA_SUCCESS;
}

int cuDevicePrimaryCtxRetain(void** context, int device) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!context) return CUDA_ERROR_INVALID_VALUE;
    *context = &g_primaryContext;
    return CUDA_SUCCESS;
}

int cuDevicePrimaryCtxRelease_v2(int device) {
    if (!g_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    return device == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

int cuCtxSetCurrent(void* context) {
    (void)context;
    return g_initialised ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

int cuCtxSynchronize(void) {
    return CUDA_SUCCESS;  // everything already ran synchronously
}

// ---- Memory --------------------------------------------------------------------

int cuMemAlloc_v2(CUdeviceptr* pointer, size_t bytes) {
    if (!pointer || bytes == 0) return CUDA_ERROR_INVALID_VALUE;  // as the real driver
    if (bytes > kTotalMemory) return CUDA_ERROR_OUT_OF_MEMORY;
    size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* memory = aligned_alloc(kAlignment, rounded);
    if (!memory) return CUDA_ERROR_OUT_OF_MEMORY;
    // NaN-fill so that kernels reading memory nobody wrote produce NaNs.
    uint32_t* words = static_cast<uint32_t*>(memory);
    std::fill(words, words + rounded / 4, kUninitialisedPattern);
    {
        std::lock_guard<std::mutex> lock(g_memMutex);
        g_allocations[reinterpret_cast<uintptr_t>(memory)] = bytes;  // the requested size
    }
    *pointer = reinterpret_cast<uintptr_t>(memory);
    return CUDA_SUCCESS;
}

int cuMemFree_v2(CUdeviceptr pointer) {
    if (pointer == 0) return CUDA_SUCCESS;  // freeing null is a no-op, as in CUDA
    {
        std::lock_guard<std::mutex> lock(g_memMutex);
        auto it = g_allocations.find(uintptr_t(pointer));
        if (it == g_allocations.end()) return CUDA_ERROR_INVALID_VALUE;  // double free / bad pointer
        g_allocations.erase(it);
    }
    free(reinterpret_cast<void*>(uintptr_t(pointer)));
    return CUDA_SUCCESS;
}

int cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) {
    if (!inLiveAllocation(uintptr_t(dst), bytes) || (bytes && !src)) return CUDA_ERROR_INVALID_VALUE;
    if (bytes) memcpy(reinterpret_cast<void*>(uintptr_t(dst)), src, bytes);
    ++g_htod;
    return CUDA_SUCCESS;
}

int cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) {
    if (!inLiveAllocation(uintptr_t(src), bytes) || (bytes && !dst)) return CUDA_ERROR_INVALID_VALUE;
    if (bytes) memcpy(dst, reinterpret_cast<const void*>(uintptr_t(src)), bytes);
    ++g_dtoh;
    return CUDA_SUCCESS;
}

int cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    if (!inLiveAllocation(uintptr_t(dst), bytes) || !inLiveAllocation(uintptr_t(src), bytes))
        return CUDA_ERROR_INVALID_VALUE;
    // memmove: CUDA does not promise anything for overlap, but be forgiving.
    if (bytes) memmove(reinterpret_cast<void*>(uintptr_t(dst)), reinterpret_cast<const void*>(uintptr_t(src)), bytes);
    return CUDA_SUCCESS;
}

int cuMemsetD32_v2(CUdeviceptr pointer, unsigned value, size_t count) {
    if (pointer % 4 != 0 || count > SIZE_MAX / 4) return CUDA_ERROR_INVALID_VALUE;
    if (!inLiveAllocation(uintptr_t(pointer), count * 4)) return CUDA_ERROR_INVALID_VALUE;
    uint32_t* words = reinterpret_cast<uint32_t*>(uintptr_t(pointer));
    std::fill(words, words + count, uint32_t(value));
    return CUDA_SUCCESS;
}

int cuMemsetD8_v2(CUdeviceptr pointer, unsigned char value, size_t count) {
    if (!inLiveAllocation(uintptr_t(pointer), count)) return CUDA_ERROR_INVALID_VALUE;
    if (count) memset(reinterpret_cast<void*>(uintptr_t(pointer)), value, count);
    return CUDA_SUCCESS;
}

// ---- Modules and launches -----------------------------------------------------------

int cuModuleLoadData(void** module, const void* image) {
    if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
    const char* path = static_cast<const char*>(image);
    void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) return CUDA_ERROR_INVALID_IMAGE;
    // Every library built with kernel_prelude.h exports the grid setter; a
    // library without it was not produced by this stand-in's NVRTC.
    GridSetter setGrid = reinterpret_cast<GridSetter>(dlsym(library, "ner_standin_set_grid"));
    if (!setGrid) {
        dlclose(library);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *module = new Module{library, setGrid, {}};
    return CUDA_SUCCESS;
}

int cuModuleUnload(void* handle) {
    Module* module = static_cast<Module*>(handle);
    if (!module) return CUDA_ERROR_INVALID_HANDLE;
    for (auto& entry : module->functions) delete entry.second;
    dlclose(module->library);
    delete module;
    return CUDA_SUCCESS;
}

int cuModuleGetFunction(void** function, void* handle, const char* name) {
    Module* module = static_cast<Module*>(handle);
    if (!function || !name) return CUDA_ERROR_INVALID_VALUE;
    if (!module) return CUDA_ERROR_INVALID_HANDLE;
    auto found = module->functions.find(name);
    if (found != module->functions.end()) {
        *function = found->second;
        return CUDA_SUCCESS;
    }
    std::string symbol = std::string(name) + "__launch";  // emitted by NER_LAUNCHER(name)
    Launcher launch = reinterpret_cast<Launcher>(dlsym(module->library, symbol.c_str()));
    if (!launch) return CUDA_ERROR_NOT_FOUND;
    Function* f = new Function{launch, module->setGrid};
    module->functions[name] = f;
    *function = f;
    return CUDA_SUCCESS;
}

int cuLaunchKernel(void* handle, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, unsigned sharedBytes, void* stream, void** params, void** extra) {
    (void)stream;  // one synchronous "stream"
    Function* f = static_cast<Function*>(handle);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0) return CUDA_ERROR_INVALID_VALUE;
    if (bx > 1024 || by > 1024 || bz > 64 || uint64_t(bx) * by * bz > 1024) return CUDA_ERROR_INVALID_VALUE;
    // Kernels cannot use shared memory here, and the `extra` packing is not
    // supported: reject both rather than run something that cannot be right.
    if (sharedBytes != 0 || extra != nullptr) return CUDA_ERROR_INVALID_VALUE;

    unsigned grid[12] = {gx, gy, gz, bx, by, bz, 0, 0, 0, 0, 0, 0};
    for (unsigned z = 0; z < gz; ++z)
        for (unsigned y = 0; y < gy; ++y)
            for (unsigned x = 0; x < gx; ++x) {
                grid[6] = x; grid[7] = y; grid[8] = z;
                for (unsigned tz = 0; tz < bz; ++tz)
                    for (unsigned ty = 0; ty < by; ++ty)
                        for (unsigned tx = 0; tx < bx; ++tx) {
                            grid[9] = tx; grid[10] = ty; grid[11] = tz;
                            f->setGrid(grid);
                            f->launch(params);
                        }
            }
    ++g_launches;
    return CUDA_SUCCESS;
}

int cuGetErrorString(int status, const char** out) {
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    // Strings are cached per status so the returned pointers stay valid.
    static std::mutex mutex;
    static std::map<int, std::string>& strings = *new std::map<int, std::string>();  // never destroyed, as above
    std::lock_guard<std::mutex> lock(mutex);
    auto it = strings.find(status);
    if (it == strings.end()) {
        std::string text = "CUDA stand-in error " + std::to_string(status) + ": " + cudaErrorMeaning(status);
        it = strings.emplace(status, text).first;
    }
    *out = it->second.c_str();
    return CUDA_SUCCESS;
}

// Test hook: numbers of host-to-device copies, device-to-host copies,
// kernel launches and SGEMM calls since the library was loaded.
void ner_standin_counters(long long* htod, long long* dtoh, long long* launches, long long* gemms) {
    if (htod) *htod = g_htod;
    if (dtoh) *dtoh = g_dtoh;
    if (launches) *launches = g_launches;
    if (gemms) *gemms = g_gemms;
}

// =============================================================================
// cuBLAS
// =============================================================================

int cublasCreate_v2(void** handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new BlasHandle();
    return CUBLAS_STATUS_SUCCESS;
}

int cublasDestroy_v2(void* handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete static_cast<BlasHandle*>(handle);
    return CUBLAS_STATUS_SUCCESS;
}

int cublasSetMathMode(void* handle, int mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    static_cast<BlasHandle*>(handle)->mathMode = mode;  // recorded, no effect on the CPU
    return CUBLAS_STATUS_SUCCESS;
}

int cublasSetStream_v2(void* handle, void* stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    static_cast<BlasHandle*>(handle)->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

// C = alpha * op(A) * op(B) + beta * C, column-major, alpha/beta on the host.
int cublasSgemm_v2(void* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                   const float* A, int lda, const float* B, int ldb, const float* beta, float* C, int ldc) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    // CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 (same as T for real data).
    if (transa < 0 || transa > 2 || transb < 0 || transb > 2) return CUBLAS_STATUS_INVALID_VALUE;
    if (m < 0 || n < 0 || k < 0 || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    const bool ta = transa != 0, tb = transb != 0;
    // Stored shapes of A and B (before op): A is m x k or k x m, B is k x n or n x k.
    const int aRows = ta ? k : m, aCols = ta ? m : k;
    const int bRows = tb ? n : k, bCols = tb ? k : n;
    if (lda < std::max(1, aRows) || ldb < std::max(1, bRows) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;

    // Operands must lie inside live device allocations; on a GPU a stray
    // operand would be an illegal address, here it is reported at once.
    if (!inLiveAllocation(reinterpret_cast<uintptr_t>(C), matrixBytes(m, n, ldc)) ||
        (k > 0 && !inLiveAllocation(reinterpret_cast<uintptr_t>(A), matrixBytes(aRows, aCols, lda))) ||
        (k > 0 && !inLiveAllocation(reinterpret_cast<uintptr_t>(B), matrixBytes(bRows, bCols, ldb))))
        return CUBLAS_STATUS_EXECUTION_FAILED;

    ++g_gemms;
    if (k == 0 || *alpha == 0.0f) {
        // C = beta * C by hand: BLAS implementations differ on k == 0. As in
        // cuBLAS, beta == 0 overwrites C without reading it (NaNs vanish).
        const float b = *beta;
        for (int j = 0; j < n; ++j) {
            float* column = C + size_t(j) * size_t(ldc);
            for (int i = 0; i < m; ++i) column[i] = (b == 0.0f) ? 0.0f : b * column[i];
        }
        return CUBLAS_STATUS_SUCCESS;
    }
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                *alpha, A, lda, B, ldb, *beta, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusString(int status) {
    switch (status) {
        case 0: return "CUBLAS_STATUS_SUCCESS";
        case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
        case 7: return "CUBLAS_STATUS_INVALID_VALUE";
        case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
        case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

// =============================================================================
// NVRTC
// =============================================================================

int nvrtcVersion(int* major, int* minor) {
    if (!major || !minor) return NVRTC_ERROR_INVALID_INPUT;
    *major = 12;
    *minor = 0;
    return NVRTC_SUCCESS;
}

int nvrtcCreateProgram(void** program, const char* source, const char* name, int numHeaders,
                       const char** headers, const char** includeNames) {
    if (!program || !source || numHeaders < 0) return NVRTC_ERROR_INVALID_INPUT;
    if (numHeaders > 0 && (!headers || !includeNames)) return NVRTC_ERROR_INVALID_INPUT;
    Program* p = new Program();
    p->source = source;
    p->name = name ? name : "default_program";
    for (int i = 0; i < numHeaders; ++i) {
        if (!headers[i] || !includeNames[i]) {
            delete p;
            return NVRTC_ERROR_INVALID_INPUT;
        }
        p->headers.emplace_back(includeNames[i], headers[i]);
    }
    *program = p;
    return NVRTC_SUCCESS;
}

int nvrtcCompileProgram(void* handle, int numOptions, const char** options) {
    Program* p = static_cast<Program*>(handle);
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    if (numOptions < 0 || (numOptions > 0 && !options)) return NVRTC_ERROR_INVALID_INPUT;
    p->ptx.clear();

    // Options are meant for the GPU compiler and are only recorded, except
    // macro definitions, which can change what the source means.
    std::vector<std::string> defines;
    p->log = "CUDA stand-in NVRTC: compiling '" + p->name + "' as host C++; options:";
    for (int i = 0; i < numOptions; ++i) {
        std::string option = options[i] ? options[i] : "";
        p->log += " " + option;
        if (option.rfind("-D", 0) == 0 && option.size() > 2) defines.push_back(option);
        else if (option.rfind("--define-macro=", 0) == 0) defines.push_back("-D" + option.substr(15));
    }
    p->log += "\n";

    const char* prelude = getenv("NER_CUDA_STANDIN_PRELUDE");
    if (!prelude || !*prelude) {
        p->log += "error: NER_CUDA_STANDIN_PRELUDE is not set; it must name kernel_prelude.h\n";
        return NVRTC_ERROR_COMPILATION;
    }
    const char* cxxEnv = getenv("NER_CUDA_STANDIN_CXX");
    std::string cxx = (cxxEnv && *cxxEnv) ? cxxEnv : "c++";

    const char* tmpEnv = getenv("TMPDIR");
    std::string tmpl = std::string((tmpEnv && *tmpEnv) ? tmpEnv : "/tmp") + "/ner-nvrtc-XXXXXX";
    std::vector<char> dirBuffer(tmpl.begin(), tmpl.end());
    dirBuffer.push_back('\0');
    if (!mkdtemp(dirBuffer.data())) {
        p->log += "error: mkdtemp(" + tmpl + ") failed: " + strerror(errno) + "\n";
        return NVRTC_ERROR_INTERNAL_ERROR;
    }
    const std::string dir = dirBuffer.data();
    std::vector<std::string> files = {"kernel.cu", "kernels.so", "compiler.log"};
    // A failed compile leaves nothing worth keeping, so its dir goes at once;
    // a successful one is kept until unload (see TempDirs).
    auto discard = [&] {
        for (auto& f : files) unlink((dir + "/" + f).c_str());
        rmdir(dir.c_str());
    };
    auto remember = [&] {
        std::lock_guard<std::mutex> lock(g_tempDirs.mutex);
        g_tempDirs.dirs.emplace_back(dir, files);
    };

    // Headers passed to nvrtcCreateProgram go next to the source; only plain
    // file names are supported.
    for (auto& header : p->headers) {
        if (header.first.empty() || header.first.find('/') != std::string::npos || header.first == "." ||
            header.first == "..") {
            p->log += "error: the stand-in only supports plain header names, not '" + header.first + "'\n";
            discard();
            return NVRTC_ERROR_INVALID_INPUT;
        }
        files.push_back(header.first);
        writeFile(dir + "/" + header.first, header.second);
    }

    const std::string source = dir + "/kernel.cu";
    const std::string library = dir + "/kernels.so";
    const std::string compilerLog = dir + "/compiler.log";
    if (!writeFile(source, p->source)) {
        p->log += "error: cannot write " + source + "\n";
        discard();
        return NVRTC_ERROR_INTERNAL_ERROR;
    }

    std::vector<std::string> args = {cxx, "-std=c++17", "-O1", "-shared", "-fPIC", "-I", dir, "-include", prelude};
    args.insert(args.end(), defines.begin(), defines.end());
    args.insert(args.end(), {"-x", "c++", source, "-o", library});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    // The compiler's stdout and stderr both go to compiler.log.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, compilerLog.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    int spawnError = posix_spawnp(&pid, cxx.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawnError != 0) {
        p->log += "error: cannot run the compiler '" + cxx + "': " + strerror(spawnError) + "\n";
        discard();
        return NVRTC_ERROR_COMPILATION;
    }
    int waitStatus = 0;
    while (waitpid(pid, &waitStatus, 0) < 0) {
        if (errno != EINTR) {
            p->log += std::string("error: waitpid failed: ") + strerror(errno) + "\n";
            remember();  // the compiler may still be writing there
            return NVRTC_ERROR_INTERNAL_ERROR;
        }
    }
    p->log += readFile(compilerLog);
    if (!WIFEXITED(waitStatus) || WEXITSTATUS(waitStatus) != 0) {
        p->log += "error: '" + cxx + "' failed (wait status " + std::to_string(waitStatus) + ")\n";
        discard();
        return NVRTC_ERROR_COMPILATION;
    }
    remember();
    p->ptx = library;
    return NVRTC_SUCCESS;
}

int nvrtcGetPTXSize(void* handle, size_t* size) {
    Program* p = static_cast<Program*>(handle);
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!size) return NVRTC_ERROR_INVALID_INPUT;
    if (p->ptx.empty()) return NVRTC_ERROR_INVALID_PROGRAM;  // not (successfully) compiled
    *size = p->ptx.size() + 1;
    return NVRTC_SUCCESS;
}

int nvrtcGetPTX(void* handle, char* out) {
    Program* p = static_cast<Program*>(handle);
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!out) return NVRTC_ERROR_INVALID_INPUT;
    if (p->ptx.empty()) return NVRTC_ERROR_INVALID_PROGRAM;
    memcpy(out, p->ptx.c_str(), p->ptx.size() + 1);
    return NVRTC_SUCCESS;
}

int nvrtcGetProgramLogSize(void* handle, size_t* size) {
    Program* p = static_cast<Program*>(handle);
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!size) return NVRTC_ERROR_INVALID_INPUT;
    *size = p->log.size() + 1;
    return NVRTC_SUCCESS;
}

int nvrtcGetProgramLog(void* handle, char* out) {
    Program* p = static_cast<Program*>(handle);
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    if (!out) return NVRTC_ERROR_INVALID_INPUT;
    memcpy(out, p->log.c_str(), p->log.size() + 1);
    return NVRTC_SUCCESS;
}

// The compiled library stays on disk (cuModuleLoadData may come later); its
// temp dir is removed when the stand-in itself is unloaded.
int nvrtcDestroyProgram(void** handle) {
    if (!handle || !*handle) return NVRTC_ERROR_INVALID_PROGRAM;
    delete static_cast<Program*>(*handle);
    *handle = nullptr;
    return NVRTC_SUCCESS;
}

const char* nvrtcGetErrorString(int status) {
    switch (status) {
        case 0: return "NVRTC_SUCCESS";
        case 1: return "NVRTC_ERROR_OUT_OF_MEMORY";
        case 2: return "NVRTC_ERROR_PROGRAM_CREATION_FAILURE";
        case 3: return "NVRTC_ERROR_INVALID_INPUT";
        case 4: return "NVRTC_ERROR_INVALID_PROGRAM";
        case 5: return "NVRTC_ERROR_INVALID_OPTION";
        case 6: return "NVRTC_ERROR_COMPILATION";
        case 7: return "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE";
        case 11: return "NVRTC_ERROR_INTERNAL_ERROR";
        default: return "NVRTC_ERROR unknown";
    }
}

}  // extern "C"
