// The CUDA runtime moetrain uses, behind a header free of CUDA types (so that plain C++ files
// call it): the device of this rank, its one stream and cuBLAS handle, a caching pool of device
// memory, copies, and the matmul precision. Every failure throws mt::Error naming the call.
#pragma once
#include <cstddef>
#include <string>

namespace mt::cuda {

// Visible GPUs; 0 when there is none or no driver (never throws).
int device_count();
// The PCI bus id of visible GPU `index` ("0000:3b:00.0"): the same GPU seen by two processes.
std::string device_bus_id(int index);
// Makes GPU `index` this process's device and creates its stream and cuBLAS handle.
void use_device(int index);
void* stream();  // the cudaStream_t every kernel, copy and NCCL call of this rank runs on
void* blas();    // the cuBLAS handle, bound to stream()

// cudaError_t / cublasStatus_t to mt::Error (code 0 is success).
void check(int code, const char* what);
void check_blas(int status, const char* what);

// Device memory from a caching pool: released blocks are kept and handed out again for requests
// of up to their size (at least half of it), so steady-state steps never call cudaMalloc.
void* alloc(size_t bytes);
void release(void* p);

// Copies between any two of host and device memory (unified addressing) on the stream; with
// wait, returns when the copy is done (needed whenever host memory is involved).
void copy(void* dst, const void* src, size_t bytes, bool wait = true);
void zero(void* p, size_t bytes);  // on the stream
void synchronize();                // waits for the stream

// Matmuls in bf16 (cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF: fp32 tensors, bf16 products on the
// tensor cores, fp32 accumulation) or in fp32 (the default, for checks).
void set_bf16_matmul(bool on);
bool bf16_matmul();

}  // namespace mt::cuda
