// CUDA runtime: device selection, stream, cuBLAS handle, memory pool and copies.
#include "tensor/cuda/runtime.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <unordered_map>

#include "tensor/error.hpp"

namespace mt::cuda {

namespace {
struct State {
  int device = -1;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  bool bf16 = false;
  std::multimap<size_t, void*> free_blocks;      // size -> block
  std::unordered_map<void*, size_t> block_size;  // every block handed out or cached
};
State& state() {
  static State s;
  return s;
}
State& ready() {
  State& s = state();
  MT_CHECK(s.device >= 0, "cuda: no device selected (use_device)");
  return s;
}
}  // namespace

void check(int code, const char* what) {
  if (code != cudaSuccess)
    fail("cuda: {}: {} ({})", what, cudaGetErrorString(cudaError_t(code)), code);
}

void check_blas(int status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail("cublas: {}: {} ({})", what, cublasGetStatusString(cublasStatus_t(status)), status);
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return n;
}

std::string device_bus_id(int index) {
  char id[32] = {};
  check(cudaDeviceGetPCIBusId(id, sizeof id, index), "cudaDeviceGetPCIBusId");
  return id;
}

void use_device(int index) {
  State& s = state();
  const int n = device_count();
  MT_CHECK(n > 0, "--device cuda: no GPU is visible (CUDA_VISIBLE_DEVICES, driver)");
  MT_CHECK(index >= 0 && index < n, "cuda: device {} of {} visible GPUs", index, n);
  if (s.device == index) return;
  MT_CHECK(s.device < 0, "cuda: this process already uses GPU {}", s.device);
  check(cudaSetDevice(index), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check_blas(cublasCreate(&s.blas), "cublasCreate");
  check_blas(cublasSetStream(s.blas, s.stream), "cublasSetStream");
  s.device = index;
}

void* stream() {
  return ready().stream;
}

void* blas() {
  return ready().blas;
}

void* alloc(size_t bytes) {
  State& s = ready();
  bytes = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  auto it = s.free_blocks.lower_bound(bytes);
  if (it != s.free_blocks.end() && it->first / 2 <= bytes) {
    void* p = it->second;
    s.free_blocks.erase(it);
    return p;
  }
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    // Out of memory: give the cached blocks back to the driver and try once more.
    cudaGetLastError();
    check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize");
    for (auto& [size, block] : s.free_blocks) {
      cudaFree(block);
      s.block_size.erase(block);
    }
    s.free_blocks.clear();
    check(cudaMalloc(&p, bytes), fmt::format("cudaMalloc of {} bytes", bytes).c_str());
  }
  s.block_size[p] = bytes;
  return p;
}

void release(void* p) {
  if (!p) return;
  State& s = ready();
  auto it = s.block_size.find(p);
  MT_CHECK(it != s.block_size.end(), "cuda: release of a pointer the pool did not hand out");
  s.free_blocks.emplace(it->second, p);
}

void copy(void* dst, const void* src, size_t bytes, bool wait) {
  if (bytes == 0) return;
  State& s = ready();
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s.stream), "cudaMemcpyAsync");
  if (wait) check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize after a copy");
}

void zero(void* p, size_t bytes) {
  if (bytes) check(cudaMemsetAsync(p, 0, bytes, ready().stream), "cudaMemsetAsync");
}

void synchronize() {
  check(cudaStreamSynchronize(ready().stream), "cudaStreamSynchronize");
}

void set_bf16_matmul(bool on) {
  state().bf16 = on;
}

bool bf16_matmul() {
  return state().bf16;
}

}  // namespace mt::cuda
