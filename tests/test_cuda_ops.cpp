// Every op on the GPU against the same op on the CPU, on random data (skipped without a GPU).
// Tolerances: fp32 ops agree to ~1e-5 relative (different summation orders, libm vs. CUDA
// exp/tanh); bf16 matmuls to ~1e-2 (8-bit mantissas, fp32 accumulation).
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <vector>

#include "tensor/cuda/runtime.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/rng.hpp"

namespace mt {
namespace {

// Host vectors and their device twins; device memory goes back to the pool at the end.
class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no GPU visible: CUDA op tests skipped";
    cuda::use_device(0);
    cuda::set_bf16_matmul(false);
  }
  void TearDown() override {
    for (void* p : device_) cuda::release(p);
  }
  Tensor host(Shape s, const char* name, float scale = 1.0f) {
    auto& v = floats_.emplace_back(s.numel());
    const Rng rng(7, name_hash(name));
    for (size_t i = 0; i < v.size(); ++i) v[i] = scale * rng.normal(i);
    return Tensor{v.data(), s};
  }
  Tensor host_ints(Shape s, const std::vector<int32_t>& values) {
    auto& v = ints_.emplace_back(values);
    return Tensor{v.data(), s, DType::I32};
  }
  Tensor on_gpu(const Tensor& t) {
    void* p = cuda::alloc(t.bytes());
    device_.push_back(p);
    Tensor d = t;
    d.data = p;
    d.device = Device::CUDA;
    ops::copy(t, d);
    return d;
  }
  // Every element of the GPU tensor against the CPU one: |g - c| <= rtol * max|c| + atol.
  void expect_close(const Tensor& gpu, const Tensor& cpu, const char* what, double rtol = 2e-5,
                    double atol = 1e-6) {
    std::vector<float> g(gpu.numel());
    ops::copy(gpu, Tensor{g.data(), gpu.shape});
    double scale = 0;
    for (int64_t i = 0; i < cpu.numel(); ++i)
      scale = std::max(scale, double(std::abs(cpu.f32()[i])));
    for (int64_t i = 0; i < cpu.numel(); ++i)
      ASSERT_NEAR(g[i], cpu.f32()[i], rtol * scale + atol) << what << " element " << i;
  }

 private:
  std::deque<std::vector<float>> floats_;
  std::deque<std::vector<int32_t>> ints_;
  std::vector<void*> device_;
};

TEST_F(CudaOps, MatmulEveryTransposeFp32AndBf16) {
  for (bool bf16 : {false, true})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const int64_t m = 37, k = 70, n = 45;
        Tensor a = host(ta ? Shape{k, m} : Shape{m, k}, "a");
        Tensor b = host(tb ? Shape{n, k} : Shape{k, n}, "b");
        Tensor c = host({m, n}, "c");
        Tensor da = on_gpu(a), db = on_gpu(b), dc = on_gpu(c);
        cuda::set_bf16_matmul(bf16);
        ops::matmul(da, ta, db, tb, dc, 0.5f, 1.0f);
        ops::matmul(a, ta, b, tb, c, 0.5f, 1.0f);
        expect_close(dc, c, bf16 ? "matmul bf16" : "matmul", bf16 ? 1e-2 : 2e-5);
      }
}

TEST_F(CudaOps, ElementwiseAndReductions) {
  const Shape s{33, 130};
  Tensor a = host(s, "a"), b = host(s, "b"), out = host(s, "out"), bias = host({130}, "bias");
  Tensor act = host(s, "act");
  Tensor da = on_gpu(a), db = on_gpu(b), dout = on_gpu(out), dbias = on_gpu(bias);
  Tensor dact = on_gpu(act);
  ops::mul(da, db, dout);
  ops::mul(a, b, out);
  expect_close(dout, out, "mul");
  ops::add(da, db, dout);
  ops::add(a, b, out);
  expect_close(dout, out, "add");
  ops::add_rows(dout, dbias);
  ops::add_rows(out, bias);
  expect_close(dout, out, "add_rows");
  ops::sum_rows_accumulate(da, dbias);
  ops::sum_rows_accumulate(a, bias);
  expect_close(dbias, bias, "sum_rows_accumulate");
  EXPECT_NEAR(ops::sum_squares(da), ops::sum_squares(a), 1e-9 * ops::sum_squares(a));
  ops::bias_gelu(dout, dbias, dact);
  ops::bias_gelu(out, bias, act);
  expect_close(dout, out, "bias_gelu y");
  expect_close(dact, act, "bias_gelu act");
  ops::gelu_backward_bias(da, db, dbias);
  ops::gelu_backward_bias(a, b, bias);
  expect_close(db, b, "gelu_backward_bias d");
  expect_close(dbias, bias, "gelu_backward_bias db");
  ops::fill(dout, 3.5f);
  ops::fill(out, 3.5f);
  expect_close(dout, out, "fill", 0, 0);
}

TEST_F(CudaOps, AdamW) {
  const Shape s{1000};
  Tensor p = host(s, "p"), g = host(s, "g"), m = host(s, "m", 0.1f), v = host(s, "v", 0.1f);
  for (int64_t i = 0; i < v.numel(); ++i) v.f32()[i] = std::abs(v.f32()[i]);
  Tensor dp = on_gpu(p), dg = on_gpu(g), dm = on_gpu(m), dv = on_gpu(v);
  for (int64_t step = 1; step <= 3; ++step) {
    const ops::AdamWStep st{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f};
    ops::adamw_update(dp, dg, dm, dv, st);
    ops::adamw_update(p, g, m, v, st);
  }
  expect_close(dp, p, "adamw param");
  expect_close(dm, m, "adamw m");
  expect_close(dv, v, "adamw v");
}

TEST_F(CudaOps, LayerNormForwardBackward) {
  const int64_t r = 50, c = 96;
  Tensor x = host({r, c}, "x"), g = host({c}, "g"), b = host({c}, "b"), y = host({r, c}, "y");
  Tensor mean = host({r}, "mean"), rstd = host({r}, "rstd"), dy = host({r, c}, "dy");
  Tensor dx = host({r, c}, "dx"), dg = host({c}, "dg"), db = host({c}, "db");
  Tensor gx = on_gpu(x), gg = on_gpu(g), gb = on_gpu(b), gy = on_gpu(y), gmean = on_gpu(mean),
         grstd = on_gpu(rstd), gdy = on_gpu(dy), gdx = on_gpu(dx), gdg = on_gpu(dg),
         gdb = on_gpu(db);
  ops::layernorm_forward(gx, gg, gb, gy, gmean, grstd);
  ops::layernorm_forward(x, g, b, y, mean, rstd);
  expect_close(gy, y, "layernorm y");
  expect_close(grstd, rstd, "layernorm rstd");
  ops::layernorm_backward(gdy, gx, gg, gmean, grstd, gdx, gdg, gdb);
  ops::layernorm_backward(dy, x, g, mean, rstd, dx, dg, db);
  expect_close(gdx, dx, "layernorm dx");
  expect_close(gdg, dg, "layernorm dgamma");
  expect_close(gdb, db, "layernorm dbeta");
}

TEST_F(CudaOps, AttentionForwardBackward) {
  for (int64_t T : {7, 70}) {
    const int64_t B = 3, H = 4, hd = 8, d = H * hd;
    Tensor qkv = host({B, T, 3 * d}, "qkv"), out = host({B, T, d}, "out");
    Tensor probs = host({B, H, T, T}, "probs"), dout = host({B, T, d}, "dout");
    Tensor dqkv = host({B, T, 3 * d}, "dqkv"), scratch = host({B, H, T, T}, "scratch");
    Tensor gqkv = on_gpu(qkv), gout = on_gpu(out), gprobs = on_gpu(probs), gdout = on_gpu(dout),
           gdqkv = on_gpu(dqkv), gscratch = on_gpu(scratch);
    ops::attention_forward(gqkv, int(H), gout, gprobs);
    ops::attention_forward(qkv, int(H), out, probs);
    expect_close(gprobs, probs, "attention probs");
    expect_close(gout, out, "attention out");
    ops::attention_backward(gdout, gqkv, gprobs, int(H), gdqkv, gscratch);
    ops::attention_backward(dout, qkv, probs, int(H), dqkv, scratch);
    expect_close(gdqkv, dqkv, "attention dqkv");
    // With a dropout mask on the probabilities (scale factors 0 or 2).
    Tensor mask = host({B, H, T, T}, "mask"), dropped = host({B, H, T, T}, "dropped");
    for (int64_t i = 0; i < mask.numel(); ++i) mask.f32()[i] = mask.f32()[i] > 0 ? 2.0f : 0.0f;
    Tensor gmask = on_gpu(mask), gdropped = on_gpu(dropped);
    ops::attention_forward(gqkv, int(H), gout, gprobs, gmask, gdropped);
    ops::attention_forward(qkv, int(H), out, probs, mask, dropped);
    expect_close(gdropped, dropped, "attention dropped probs");
    expect_close(gout, out, "attention out with dropout");
    ops::attention_backward(gdout, gqkv, gprobs, int(H), gdqkv, gscratch, gmask, gdropped);
    ops::attention_backward(dout, qkv, probs, int(H), dqkv, scratch, mask, dropped);
    expect_close(gdqkv, dqkv, "attention dqkv with dropout");
  }
}

// The MoE layer's dispatch and combine: a gather of rows by index, and the weighted combine of
// k = 2 choices per token (one dropped) with its backward.
TEST_F(CudaOps, MoeRowGatherAndCombine) {
  const int64_t T = 9, k = 2, d = 20, n = 14;
  std::vector<int32_t> index(n), slot(T * k);
  for (int64_t a = 0; a < n; ++a) index[a] = int32_t((a * 5) % T);
  for (int64_t i = 0; i < T * k; ++i) slot[i] = i == 7 ? -1 : int32_t((i * 3) % n);
  Tensor src = host({T, d}, "rows-src"), rows = host({n, d}, "rows-out");
  Tensor idx = host_ints({n}, index), slots = host_ints({T, k}, slot);
  Tensor gsrc = on_gpu(src), grows = on_gpu(rows), gidx = on_gpu(idx), gslots = on_gpu(slots);
  ops::gather_rows(gsrc, gidx, grows);
  ops::gather_rows(src, idx, rows);
  expect_close(grows, rows, "gather_rows", 0, 0);
  Tensor w = host({T, k}, "rows-w"), y = host({T, d}, "rows-y"), dy = host({T, d}, "rows-dy");
  Tensor dsrc = host({n, d}, "rows-dsrc"), dw = host({T, k}, "rows-dw");
  Tensor gw = on_gpu(w), gy = on_gpu(y), gdy = on_gpu(dy), gdsrc = on_gpu(dsrc), gdw = on_gpu(dw);
  ops::combine_rows(grows, gslots, gw, gy);
  ops::combine_rows(rows, slots, w, y);
  expect_close(gy, y, "combine_rows");
  ops::combine_rows_backward(gdy, grows, gslots, gw, gdsrc, gdw);
  ops::combine_rows_backward(dy, rows, slots, w, dsrc, dw);
  expect_close(gdsrc, dsrc, "combine_rows_backward dsrc");
  expect_close(gdw, dw, "combine_rows_backward dweight");
}

TEST_F(CudaOps, EmbeddingForwardBackward) {
  const int64_t B = 4, T = 9, V = 20, d = 40;
  std::vector<int32_t> ids(B * T);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7) % 5 + (i % 3) * 5);  // repeats
  Tensor tokens = host_ints({B, T}, ids);
  Tensor wte = host({V, d}, "wte"), wpe = host({T, d}, "wpe"), out = host({B, T, d}, "out");
  Tensor dwte = host({V, d}, "dwte"), dwpe = host({T, d}, "dwpe"), dout = host({B, T, d}, "dout");
  Tensor gtok = on_gpu(tokens), gwte = on_gpu(wte), gwpe = on_gpu(wpe), gout = on_gpu(out),
         gdwte = on_gpu(dwte), gdwpe = on_gpu(dwpe), gdout = on_gpu(dout);
  ops::embedding_forward(gtok, gwte, gwpe, gout);
  ops::embedding_forward(tokens, wte, wpe, out);
  expect_close(gout, out, "embedding");
  ops::embedding_backward(gtok, gdout, gdwte, gdwpe);
  ops::embedding_backward(tokens, dout, dwte, dwpe);
  expect_close(gdwte, dwte, "embedding dwte");
  expect_close(gdwpe, dwpe, "embedding dwpe");
  ids[5] = int32_t(V);  // out of range: an error naming the id, as on the CPU
  EXPECT_THROW(ops::embedding_forward(on_gpu(host_ints({B, T}, ids)), gwte, gwpe, gout), Error);
}

TEST_F(CudaOps, CrossEntropyAndSymmetricKl) {
  const int64_t N = 24, V = 1500;
  std::vector<int32_t> y(N);
  for (int64_t i = 0; i < N; ++i) y[i] = i % 5 == 3 ? -1 : int32_t((i * 131) % V);
  Tensor targets = host_ints({N}, y), gtargets = on_gpu(targets);
  Tensor z1 = host({N, V}, "z1", 3.0f), z2 = host({N, V}, "z2", 3.0f);
  Tensor g1 = on_gpu(z1), g2 = on_gpu(z2);
  Tensor d1 = host({N, V}, "d1"), d2 = host({N, V}, "d2"), rows = host({N}, "rows");
  Tensor gd1 = on_gpu(d1), gd2 = on_gpu(d2), grows = on_gpu(rows);
  const double kl_gpu = ops::symmetric_kl(g1, g2, gtargets, gd1, gd2, grows, 0.5f);
  const double kl_cpu = ops::symmetric_kl(z1, z2, targets, d1, d2, rows, 0.5f);
  EXPECT_NEAR(kl_gpu, kl_cpu, 1e-5 * kl_cpu);
  expect_close(gd1, d1, "symmetric_kl dz1");
  expect_close(gd2, d2, "symmetric_kl dz2");
  int64_t count_gpu = 0, count_cpu = 0;
  Tensor losses = host({N}, "losses"), glosses = on_gpu(losses);
  // dlogits aliases logits, as the trainer calls it.
  const double ce_gpu = ops::cross_entropy(g1, gtargets, g1, glosses, 0.25f, &count_gpu);
  const double ce_cpu = ops::cross_entropy(z1, targets, z1, losses, 0.25f, &count_cpu);
  EXPECT_EQ(count_gpu, count_cpu);
  EXPECT_NEAR(ce_gpu, ce_cpu, 1e-5 * ce_cpu);
  expect_close(glosses, losses, "cross_entropy losses");
  expect_close(g1, z1, "cross_entropy dlogits");
  // With label smoothing (z2's copies: z1 now holds its gradient).
  Tensor s = host({N, V}, "z2", 3.0f), gs = on_gpu(s);
  const double ls_gpu = ops::cross_entropy(gs, gtargets, gs, glosses, 0.25f, &count_gpu, 0.1f);
  const double ls_cpu = ops::cross_entropy(s, targets, s, losses, 0.25f, &count_cpu, 0.1f);
  EXPECT_NEAR(ls_gpu, ls_cpu, 1e-5 * ls_cpu);
  expect_close(glosses, losses, "label-smoothed cross_entropy losses");
  expect_close(gs, s, "label-smoothed cross_entropy dlogits");
}

}  // namespace
}  // namespace mt
