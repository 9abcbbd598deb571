// GEMM: the one entry point for every product of the model, its library and its precision. CPU
// fp32: oneDNN's sgemm (its JIT picks the kernel for the CPU it finds) or OpenBLAS's (the kernels
// it picked for this CPU), whichever train.cpu_gemm names; CPU bf16: oneDNN's matmul
// (tensor/ops/bf16.cpp); CUDA: cuBLAS.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <omp.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/bf16.hpp"
#include "tensor/ops/dispatch.hpp"
#include "tensor/ops/sgemm.hpp"
#ifdef MOETRAIN_CUDA
#include "tensor/cuda/runtime.hpp"
#endif

namespace mt::cpu {

namespace {
std::atomic<std::vector<GemmCall>*> g_log{nullptr};
std::mutex g_log_mutex;
std::atomic<bool> g_bf16{false};
std::atomic<Gemm> g_gemm{Gemm::OneDnn};
}  // namespace

void set_gemm(Gemm g) {
  g_gemm.store(g);
}

Gemm gemm() {
  return g_gemm.load();
}

Gemm gemm_for_core(const std::string& openblas_core) {
  return openblas_core == "Zen" ? Gemm::OpenBlas : Gemm::OneDnn;
}

std::string openblas_core() {
  return openblas_get_corename();
}

const char* gemm_name(Gemm g) {
  return g == Gemm::OpenBlas ? "openblas" : "onednn";
}

void record_gemms(std::vector<GemmCall>* log) {
  g_log.store(log);
}

namespace {

// Runs `product` and, while record_gemms holds a log, appends the problem and its wall time.
template <typename F>
void logged(const GemmCall& problem, F&& product) {
  auto* log = g_log.load(std::memory_order_relaxed);
  const auto t0 = log ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  product();
  if (log) {
    GemmCall g = problem;
    g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    g.nested = omp_in_parallel() != 0;
    const std::lock_guard<std::mutex> lock(g_log_mutex);
    log->push_back(g);
  }
}

// A product of no terms (k = 0): c = beta * c (c is not read where beta is 0).
void no_products(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) c[r * ldc + j] = beta == 0.0f ? 0.0f : beta * c[r * ldc + j];
}

}  // namespace

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  logged({ta, tb, false, m, n, k, lda, ldb, ldc, alpha, beta, 0, false}, [&] {
    if (k == 0) {
      no_products(m, n, beta, c, ldc);
    } else if (g_bf16.load(std::memory_order_relaxed)) {
      bf16_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    } else if (g_gemm.load(std::memory_order_relaxed) == Gemm::OpenBlas) {
      // The OpenMP build runs on the calling thread inside a parallel region, as oneDNN does.
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                  int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
    } else {
      const dnnl_status_t s =
          dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      MT_CHECK(s == dnnl_success, "oneDNN sgemm {}x{}x{} failed (status {})", m, n, k, int(s));
    }
  });
}

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a,
           int64_t lda, const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  logged({ta, tb, true, m, n, k, lda, ldb, ldc, alpha, beta, 0, false}, [&] {
    if (k == 0)
      no_products(m, n, beta, c, ldc);
    else
      bf16_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  });
}

}  // namespace mt::cpu

namespace mt::ops {

void set_bf16_matmul(bool on) {
  cpu::g_bf16.store(on);
#ifdef MOETRAIN_CUDA
  cuda::set_bf16_matmul(on);
#endif
}

bool bf16_matmul() {
  return cpu::g_bf16.load();
}

DType product_input_dtype(Device device) {
  return device == Device::CPU && bf16_matmul() ? DType::BF16 : DType::F32;
}

Fp32Matmuls::Fp32Matmuls() : saved_(bf16_matmul()) {
  if (saved_) set_bf16_matmul(false);
}

Fp32Matmuls::~Fp32Matmuls() {
  if (saved_) set_bf16_matmul(true);
}

void prepare_bf16_weights(const Tensor& values) {
  if (bf16_matmul() && values.device == Device::CPU)
    cpu::set_bf16_weights(values.f32(), values.numel());
}

SharedBf16Operand::SharedBf16Operand(const Tensor& t) {
  if (bf16_matmul() && t.device == Device::CPU && t.numel() > 0) {
    cpu::share_bf16(t.f32(), t.numel());
    shared_ = t.f32();
  }
}

SharedBf16Operand::~SharedBf16Operand() {
  if (shared_) cpu::unshare_bf16(shared_);
}

void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, const Tensor& c, float alpha,
            float beta) {
  const int64_t ac = a.size(-1), ar = a.numel() / ac;
  const int64_t bc = b.size(-1), br = b.numel() / bc;
  const int64_t m = ta ? ac : ar, k = ta ? ar : ac;
  const int64_t n = tb ? br : bc, k2 = tb ? bc : br;
  MT_CHECK(k == k2 && c.size(-1) == n && c.numel() == m * n,
           "matmul: {}{} x {}{} -> {} does not fit", a.shape.str(), ta ? "^T" : "", b.shape.str(),
           tb ? "^T" : "", c.shape.str());
  MT_ON_CUDA(c,
             gemm(ta, tb, m, n, k, alpha, a.f32(), ac, 0, b.f32(), bc, 0, beta, c.f32(), n, 0, 1));
  if (a.dtype == DType::F32 && b.dtype == DType::F32) {
    cpu::sgemm(ta, tb, m, n, k, alpha, a.f32(), ac, b.f32(), bc, beta, c.f32(), n);
    return;
  }
  thread_local std::vector<uint16_t> scratch_a, scratch_b;
  auto rounded = [](const Tensor& t, std::vector<uint16_t>& scratch) -> const uint16_t* {
    if (t.numel() == 0) return nullptr;  // an empty operand: the product reads none of it
    if (t.dtype == DType::BF16) return t.bf16();
    return cpu::bf16_operand(t.f32(), t.numel() / t.size(-1), t.size(-1), t.size(-1), scratch);
  };
  cpu::sgemm(ta, tb, m, n, k, alpha, rounded(a, scratch_a), ac, rounded(b, scratch_b), bc, beta,
             c.f32(), n);
}

}  // namespace mt::ops
