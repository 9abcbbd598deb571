// The CPU's bf16 GEMM through oneDNN's matmul primitive (see bf16.hpp). Measured here at the
// demo's shapes (2 threads, AVX512_BF16 without AMX): 1.3-2.9x oneDNN's sgemm, with every size
// a run-time argument; sizes fixed at creation bought nothing, strides given at run time fall
// back to the reference kernel, so the layout is the primitive's key.
#include "tensor/ops/bf16.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include <omp.h>

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "tensor/error.hpp"

namespace mt::cpu {

namespace {

using dnnl::memory;
constexpr memory::dim kRuntime = DNNL_RUNTIME_DIM_VAL;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// The registered weights and their bf16 copy.
struct Weights {
  const float* base = nullptr;
  int64_t n = 0;
  std::vector<uint16_t> copy;
};
Weights g_weights;

// The shared operands, innermost last; `g_shared_depth` of them are live, and the storage of the
// others is kept for the next (a step makes the same few).
std::vector<Weights> g_shared;
size_t g_shared_depth = 0;

bool inside(const Weights& w, const float* p, int64_t extent) {
  return w.base && p >= w.base && p + extent <= w.base + w.n;
}

// Whether [p, p + extent) lies inside the registered weights.
bool inside_weights(const float* p, int64_t extent) {
  return inside(g_weights, p, extent);
}

// A flat array as rows of 2^14, so that the threads share its conversion.
void convert_flat(const float* values, int64_t n, uint16_t* out) {
  constexpr int64_t kRow = 1 << 14;
  round_to_bf16(values, n / kRow, kRow, kRow, out, kRow);
  round_to_bf16(values + n / kRow * kRow, 1, n % kRow, kRow, out + n / kRow * kRow, kRow);
}

using Layout = std::tuple<bool, bool, int64_t, int64_t, int64_t, float, float>;

memory::desc matrix(memory::dim rows, memory::dim cols, memory::data_type t, bool trans,
                    int64_t ld) {
  return memory::desc({rows, cols}, t, trans ? memory::dims{1, ld} : memory::dims{ld, 1});
}

// One primitive per layout, made on first use and kept (a run has a few dozen).
const dnnl::matmul& primitive(const Layout& key) {
  static std::mutex mutex;
  static std::map<Layout, dnnl::matmul> made;
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = made.find(key);
  if (it != made.end()) return it->second;
  const auto [ta, tb, lda, ldb, ldc, alpha, beta] = key;
  using dt = memory::data_type;
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  const dnnl::matmul::desc d(matrix(kRuntime, kRuntime, dt::bf16, ta, lda),
                             matrix(kRuntime, kRuntime, dt::bf16, tb, ldb),
                             matrix(kRuntime, kRuntime, dt::f32, false, ldc));
  return made.emplace(key, dnnl::matmul(dnnl::matmul::primitive_desc(d, attr, engine())))
      .first->second;
}

}  // namespace

const uint16_t* bf16_operand(const float* p, int64_t rows, int64_t cols, int64_t ld,
                             std::vector<uint16_t>& scratch) {
  const int64_t extent = (rows - 1) * ld + cols;
  if (inside_weights(p, extent)) return g_weights.copy.data() + (p - g_weights.base);
  for (size_t i = 0; i < g_shared_depth; ++i)
    if (inside(g_shared[i], p, extent)) return g_shared[i].copy.data() + (p - g_shared[i].base);
  if (int64_t(scratch.size()) < extent) scratch.resize(size_t(extent));
  round_to_bf16(p, rows, cols, ld, scratch.data(), ld);
  return scratch.data();
}

bool bf16_supported(std::string* found) {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  const auto want = unsigned(dnnl::cpu_isa::avx512_core_bf16);
  if ((unsigned(isa) & want) == want) return true;
  if (found) {
    const std::map<dnnl::cpu_isa, const char*> names = {
        {dnnl::cpu_isa::sse41, "SSE4.1"},
        {dnnl::cpu_isa::avx, "AVX"},
        {dnnl::cpu_isa::avx2, "AVX2"},
        {dnnl::cpu_isa::avx2_vnni, "AVX2_VNNI"},
        {dnnl::cpu_isa::avx512_core, "AVX512_CORE"},
        {dnnl::cpu_isa::avx512_core_vnni, "AVX512_CORE_VNNI"}};
    const auto it = names.find(isa);
    *found = it == names.end() ? "no vector ISA it knows" : it->second;
  }
  return false;
}

void set_bf16_weights(const float* values, int64_t n) {
  Weights& w = g_weights;
  w.base = values;
  w.n = n;
  w.copy.resize(size_t(n));
  convert_flat(values, n, w.copy.data());
}

void share_bf16(const float* p, int64_t n) {
  if (g_shared.size() <= g_shared_depth) g_shared.emplace_back();
  Weights& w = g_shared[g_shared_depth++];
  w.base = p;
  w.n = n;
  w.copy.resize(size_t(n));
  convert_flat(p, n, w.copy.data());
}

void unshare_bf16(const float* p) {
  MT_CHECK(g_shared_depth > 0 && g_shared[g_shared_depth - 1].base == p,
           "unshare_bf16: not the innermost shared operand");
  g_shared[--g_shared_depth].base = nullptr;
}

void forget_bf16_weights(const float* p, int64_t n) {
  Weights& w = g_weights;
  if (w.base && p < w.base + w.n && w.base < p + n) w = Weights{};
}

bool bf16_weights_cover(const float* p) {
  return inside_weights(p, 1);
}

void round_to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld_src, uint16_t* dst,
                   int64_t ld_dst) {
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && rows * cols > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * ld_src;
    uint16_t* d = dst + r * ld_dst;
    for (int64_t c = 0; c < cols; ++c) d[c] = to_bf16(s[c]);
  }
}

void bf16_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  thread_local std::vector<uint16_t> scratch_a, scratch_b;
  const uint16_t* a16 = bf16_operand(a, ta ? k : m, ta ? m : k, lda, scratch_a);
  const uint16_t* b16 = bf16_operand(b, tb ? n : k, tb ? k : n, ldb, scratch_b);
  bf16_gemm(ta, tb, m, n, k, alpha, a16, lda, b16, ldb, beta, c, ldc);
}

void bf16_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a,
               int64_t lda, const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  thread_local dnnl::stream stream(engine());
  using dt = memory::data_type;
  try {
    const dnnl::matmul& mm = primitive({ta, tb, lda, ldb, ldc, alpha, beta});
    const memory ma(matrix(m, k, dt::bf16, ta, lda), engine(), const_cast<uint16_t*>(a));
    const memory mb(matrix(k, n, dt::bf16, tb, ldb), engine(), const_cast<uint16_t*>(b));
    const memory mc(matrix(m, n, dt::f32, false, ldc), engine(), c);
    mm.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    stream.wait();
  } catch (const dnnl::error& e) {
    fail("oneDNN bf16 matmul {}x{}x{} failed: {}", m, n, k, e.what());
  }
}

}  // namespace mt::cpu
