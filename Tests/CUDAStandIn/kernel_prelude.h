// kernel_prelude.h — force-included (`-include`) by the CUDA stand-in's
// nvrtcCompileProgram when it compiles CUDA C kernel source as host C++.
//
// It maps the small CUDA dialect our kernels use onto plain C++ so the same
// source runs on the GPU (through real NVRTC) and on the CPU stand-in:
//   * __global__/__device__/... qualifiers become nothing (or `inline`);
//   * threadIdx/blockIdx/blockDim/gridDim are thread_local variables that the
//     stand-in sets, through ner_standin_set_grid, before every simulated
//     thread. They live in the kernel .so itself because the stand-in
//     dlopens that .so RTLD_LOCAL, so symbols cannot be shared the other way;
//   * NER_LAUNCHER(name) emits `name__launch(void** args)`, which unpacks
//     cuLaunchKernel-style kernelParams and calls the kernel.
// Threads run one after another, so shared memory and __syncthreads cannot
// be supported and are deliberately left undefined (a kernel using them fails
// to compile instead of silently computing garbage).
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <type_traits>
#include <utility>

// ---- CUDA qualifiers -------------------------------------------------------
// `__device__` must be empty (not `static`/`inline`): `__device__ float t[4];`
// has to stay a variable and `__device__ __forceinline__` must not repeat
// `inline`. `extern "C" __global__ void f(...)` stays an exported function.
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
// __restrict__ is understood by g++ and clang++ as-is.

// ---- Grid variables ----------------------------------------------------------
struct uint3 { unsigned int x, y, z; };
typedef uint3 dim3;

static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static thread_local uint3 blockDim;
static thread_local uint3 gridDim;
static const int warpSize = 32;

// Called by the stand-in before each simulated thread. g holds 12 values:
// gridDim, blockDim, blockIdx, threadIdx (each x, y, z).
extern "C" void ner_standin_set_grid(const unsigned int* g) {
    gridDim   = uint3{g[0], g[1], g[2]};
    blockDim  = uint3{g[3], g[4], g[5]};
    blockIdx  = uint3{g[6], g[7], g[8]};
    threadIdx = uint3{g[9], g[10], g[11]};
}

// ---- Atomics ---------------------------------------------------------------------
// Threads never run concurrently, so a plain read-add-write is atomic enough.
// Like CUDA, they return the value before the update.
#define NER_STANDIN_ATOMIC_ADD(T)                                   \
    inline T atomicAdd(T* address, T value) {                       \
        T old = *address;                                           \
        *address = old + value;                                     \
        return old;                                                 \
    }
NER_STANDIN_ATOMIC_ADD(float)
NER_STANDIN_ATOMIC_ADD(double)
NER_STANDIN_ATOMIC_ADD(int)
NER_STANDIN_ATOMIC_ADD(unsigned int)
NER_STANDIN_ATOMIC_ADD(unsigned long long)
#undef NER_STANDIN_ATOMIC_ADD

// ---- A few CUDA device-library helpers -----------------------------------------
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, sizeof f); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, sizeof i); return i; }

// ---- Launchers -----------------------------------------------------------------------
// args[i] points at the i-th kernel argument, exactly as cuLaunchKernel's
// kernelParams. The parameter types are deduced from the kernel itself, so
// the launcher can never disagree with the kernel's signature.
template <typename... A, size_t... I>
inline void ner_standin_invoke(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    (void)args;  // unused for kernels without parameters
    kernel(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

template <typename... A>
inline void ner_standin_invoke(void (*kernel)(A...), void** args) {
    ner_standin_invoke(kernel, args, std::index_sequence_for<A...>{});
}

#define NER_LAUNCHER(name)                                          \
    extern "C" void name##__launch(void** args) {                   \
        ner_standin_invoke(&name, args);                            \
    }
