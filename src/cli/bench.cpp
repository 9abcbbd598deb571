// moetrain bench: throughput measurements printed side by side (not timed tests).
//   step: tokens/s of full training steps (forward, loss, backward, clip, AdamW) on random tokens;
//         on the CPU also the step's GEMM-bound limit (its GEMMs, recorded in one step, each run
//         alone on the same shape), the peak resident memory and what the parameters, gradients
//         and AdamW moments (state) and the activation arena hold of it
//   gemm: each Linear layer's forward+backward GFLOP/s through oneDNN and through OpenBLAS (the
//         two train.cpu_gemm libraries; the kernel OpenBLAS picked for this CPU and the one `auto`
//         takes are printed), and the same layer with bf16 matmuls (train.precision = bf16) where
//         the CPU has AVX512_BF16
//   a2a, moe: see bench_moe.cpp
#include <fmt/format.h>
#include <omp.h>

#include <sys/resource.h>
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <tuple>
#include <vector>

#include "cli/bench_common.hpp"
#include "cli/commands.hpp"
#include "gates/hash.hpp"
#include "io/config.hpp"
#include "model/gate_registry.hpp"
#include "model/gpt.hpp"
#include "model/loss.hpp"
#include "optim/adamw.hpp"
#include "optim/clip.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/bf16.hpp"
#include "tensor/ops/sgemm.hpp"
#include "tensor/rng.hpp"
#include "train/runtime.hpp"

namespace po = boost::program_options;

namespace mt::cli {

namespace {

void random_tokens(const Tensor& t, int64_t vocab, uint64_t seed, uint64_t step) {
  const Rng rng(seed, stream_id({name_hash("bench"), step}));
  for (int64_t i = 0; i < t.numel(); ++i) t.i32()[i] = int32_t(rng.below(i, vocab));
}

// The GEMMs of one recorded step. alone_s: each distinct problem run alone as often as the step
// ran it (best of 3): a call made outside parallel regions on the whole pool, one made inside one
// (nested, on its thread) as the step runs those, one per thread at once, the pool's time over its
// threads; operands in bf16 where the call's were. step_s and step_alone_s: the calls the step
// made outside parallel regions, their time inside the step and alone.
struct GemmBound {
  double flops = 0, alone_s = 0, step_s = 0, step_alone_s = 0;
};
GemmBound gemms_alone(const std::vector<cpu::GemmCall>& calls) {
  using Problem = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                             float, float, bool, bool>;
  std::map<Problem, std::pair<cpu::GemmCall, int>> distinct;  // a call of each problem, how often
  GemmBound r;
  for (const auto& g : calls) {
    auto& [first, times] = distinct[{g.ta, g.tb, g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.alpha,
                                     g.beta, g.nested, g.bf16_operands}];
    if (times++ == 0) first = g;
    if (!g.nested) r.step_s += g.seconds;
  }
  const int threads = omp_get_max_threads();
  for (const auto& entry : distinct) {
    const cpu::GemmCall& g = entry.second.first;  // a plain reference: lambdas capture it
    const int times = entry.second.second;
    const int64_t a_n = (g.ta ? g.k : g.m) * g.lda, b_n = (g.tb ? g.n : g.k) * g.ldb;
    std::vector<float> a(a_n, 0.01f), b(b_n, 0.01f), c(g.m * g.ldc * (g.nested ? threads : 1));
    std::vector<uint16_t> a16(a_n, cpu::to_bf16(0.01f)), b16(b_n, cpu::to_bf16(0.01f));
    auto product = [&](float* out) {
      if (g.bf16_operands)
        cpu::sgemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a16.data(), g.lda, b16.data(), g.ldb, g.beta,
                   out, g.ldc);
      else
        cpu::sgemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a.data(), g.lda, b.data(), g.ldb, g.beta,
                   out, g.ldc);
    };
    double t = 0;
    if (g.nested) {
      t = best_seconds(3,
                       [&] {
#pragma omp parallel num_threads(threads)
                         product(c.data() + omp_get_thread_num() * g.m * g.ldc);
                       }) /
          threads;
    } else {
      t = best_seconds(3, [&] { product(c.data()); });
    }
    r.flops += 2.0 * g.m * g.n * g.k * times;
    r.alone_s += t * times;
    if (!g.nested) r.step_alone_s += t * times;
  }
  return r;
}

int bench_step(const Config& given, Device device, int64_t vocab, int steps) {
  Config cfg = given;
  cfg.model.moe.hash = "random";  // a hash table from the seed: the benchmark reads no corpus
  Runtime rt = make_runtime(cfg, device);
  MT_CHECK(rt.ranks() == 1, "bench step runs on one rank");
  ParamRegistry reg;
  const Gpt model = build_model(cfg, rt, vocab, reg);
  const GptConfig& mc = model.config();
  reg.initialize(cfg.seed);
  AdamW opt(reg, cfg.adamw);
  Arena arena(device);
  Gpt::Activations acts;
  auto step = [&](int64_t s) {
    arena.reset();
    Tensor tokens = arena.host().alloc({cfg.batch_size, mc.seq_len}, DType::I32);
    Tensor targets = arena.host().alloc({cfg.batch_size, mc.seq_len}, DType::I32);
    random_tokens(tokens, vocab, cfg.seed, 2 * s);
    random_tokens(targets, vocab, cfg.seed, 2 * s + 1);
    reg.zero_grads();
    Tensor logits = model.forward(arena, tokens, acts,
                                  {.a2a = rt.a2a.get(), .route = {.seed = cfg.seed, .step = s}});
    lm_loss(arena, logits, targets);
    model.backward(arena, logits, acts);
    opt.step(1e-4f, clip_scale(grad_norm(reg), cfg.grad_clip));
    wait_for(device);
  };
  for (int s = 0; s < 3; ++s) step(s);  // warm-up: arena sized, caches and threads warm
  std::vector<double> times;
  for (int s = 0; s < steps; ++s) times.push_back(best_seconds(1, [&] { step(3 + s); }));
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double tokens = double(cfg.batch_size * mc.seq_len);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);  // before the GEMMs run alone on buffers of their own
  GemmBound gemm;
  if (device == Device::CPU) {
    std::vector<cpu::GemmCall> calls;
    cpu::record_gemms(&calls);
    step(3 + steps);
    cpu::record_gemms(nullptr);
    gemm = gemms_alone(calls);
  }
  fmt::print(
      "{{\"bench\": \"step\", \"parameters\": {}, \"tokens_per_step\": {}, "
      "\"median_step_s\": {:.6f}, \"tokens_per_s\": {:.1f}, \"device\": \"{}\", "
      "\"precision\": \"{}\", \"threads\": {}, \"gemm_flops\": {:.0f}, "
      "\"gemm_alone_s\": {:.6f}, \"gemm_outer_in_step_s\": {:.6f}, "
      "\"gemm_outer_alone_s\": {:.6f}, \"peak_rss_mb\": {:.1f}, \"state_mb\": {:.1f}, "
      "\"arena_mb\": {:.1f}, \"arena_peak_mb\": {:.1f}}}\n",
      reg.total_elements(), int64_t(tokens), median, tokens / median, device_name(device),
      cfg.precision, omp_get_max_threads(), gemm.flops, gemm.alone_s, gemm.step_s,
      gemm.step_alone_s, ru.ru_maxrss / 1024.0,
      4.0 * sizeof(float) * double(reg.total_elements()) / (1 << 20),  // values, grads, m, v
      double(arena.capacity()) / (1 << 20), double(arena.peak_bytes()) / (1 << 20));
  return 0;
}

int bench_gemm(const Config& cfg, int64_t vocab, int reps) {
  const auto& m = cfg.model;
  const int64_t n = cfg.batch_size * m.seq_len;
  const bool bf16 = cpu::bf16_supported();
  struct Shape3 {
    const char* name;
    int64_t in, out;
  };
  const Shape3 shapes[] = {{"attn.qkv", m.d_model, 3 * m.d_model},
                           {"attn.proj", m.d_model, m.d_model},
                           {"ffn.fc1", m.d_model, m.d_ff},
                           {"ffn.fc2", m.d_ff, m.d_model},
                           {"lm_head", m.d_model, vocab}};
  const std::string core = cpu::openblas_core();
  fmt::print(
      "OpenBLAS core: {} (train.cpu_gemm = auto takes {})\n{:<10} {:>22} {:>15} {:>17} {:>7} "
      "{:>14}\n",
      core, cpu::gemm_name(cpu::gemm_for_core(core)), "layer", "shape [N,in]x[in,out]",
      "oneDNN GFLOP/s", "OpenBLAS GFLOP/s", "ratio", bf16 ? "oneDNN bf16" : "");
  for (const auto& s : shapes) {
    ParamRegistry reg;
    const Linear layer(reg, "bench", s.in, s.out, 0.02f);
    reg.allocate();
    reg.initialize(cfg.seed);
    Arena arena;
    std::vector<float> xs(n * s.in), dys(n * s.out);
    const Rng rng(cfg.seed, 7);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = rng.normal(i);
    for (size_t i = 0; i < dys.size(); ++i) dys[i] = rng.normal(i + xs.size());
    const Tensor x{xs.data(), {n, s.in}}, dy{dys.data(), {n, s.out}};
    Linear::Cache cache;
    const double flops = 3.0 * 2.0 * n * s.in * s.out;  // forward, dx, dW
    auto layer_seconds = [&](cpu::Gemm library) {
      cpu::set_gemm(library);
      return best_seconds(reps, [&] {
        arena.reset();
        layer.forward(arena, x, cache);
        layer.backward(arena, dy, cache);
      });
    };
    const double onednn = layer_seconds(cpu::Gemm::OneDnn);
    const double openblas = layer_seconds(cpu::Gemm::OpenBlas);
    double bf16_s = 0;  // train.precision = bf16: the weight's copy made once, as per pass
    if (bf16) {
      ops::set_bf16_matmul(true);
      ops::prepare_bf16_weights(reg.value_buffer().all());
      bf16_s = layer_seconds(cpu::Gemm::OneDnn);
      ops::set_bf16_matmul(false);
    }
    fmt::print("{:<10} {:>22} {:>15.1f} {:>17.1f} {:>7.2f} {:>14}\n", s.name,
               fmt::format("[{},{}]x[{},{}]", n, s.in, s.in, s.out), flops / onednn / 1e9,
               flops / openblas / 1e9, openblas / onednn,
               bf16 ? fmt::format("{:.1f}", flops / bf16_s / 1e9) : "");
  }
  if (!bf16) fmt::print("(no bf16 column: this CPU lacks AVX512_BF16)\n");
  return 0;
}

}  // namespace

int bench(const Args& args) {
  constexpr const char* kUsage =
      "usage: moetrain bench step|gemm|a2a|moe --config FILE [--steps N] [--vocab V] "
      "[--device cpu|cuda]";
  int steps = 10;
  int64_t vocab = 4096;
  po::options_description d("moetrain bench (config keys such as --model.d_model also accepted)");
  d.add_options()("steps", po::value(&steps)->default_value(steps), "timed repetitions")(
      "vocab", po::value(&vocab)->default_value(vocab), "vocabulary size of the model");
  if (std::find(args.begin(), args.end(), "--help") != args.end()) {
    std::cout << kUsage << "\n\n" << d << "\n(config keys: moetrain train --help)\n";
    return 0;
  }
  MT_CHECK(!args.empty() &&
               (args[0] == "step" || args[0] == "gemm" || args[0] == "a2a" || args[0] == "moe"),
           "bench: {}", kUsage);
  Args flags(args.begin() + 1, args.end());
  const Device device = parse_device(take_flag(flags, "--device", "cpu"));
  MT_CHECK(device == Device::CPU || args[0] == "step" || args[0] == "moe",
           "bench {}: CPU only (--device cuda: step and moe)", args[0]);
  po::variables_map vm;
  const Args rest = take_options(flags, d, vm, "bench");
  MT_CHECK(steps > 0 && vocab > 0, "bench: --steps and --vocab must be positive");
  const Config cfg = parse_config(rest);
  if (args[0] == "a2a") return bench_a2a(cfg, steps);
  if (args[0] == "moe") return bench_moe(cfg, device, steps);
  return args[0] == "step" ? bench_step(cfg, device, vocab, steps) : bench_gemm(cfg, vocab, steps);
}

}  // namespace mt::cli
