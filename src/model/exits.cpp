// JEI-DNN's exits: the heads' and gates' forward and backward side by side.
#include "model/exits.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "model/flops.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace mt {

std::vector<double> exit_costs(const GptConfig& c, const std::vector<int>& blocks, int choices,
                               bool with_exits) {
  const double d = double(c.d_model), V = double(c.vocab), context = (c.seq_len + 1) / 2.0;
  std::vector<double> block(c.n_layer);
  for (int m = 0; m < c.n_layer; ++m) block[m] = block_flops(c, m, choices, context);
  const double head = head_flops(c), exit = head + 3 * V + 6 * V + 8, kv = 4 * d * d;
  const int G = int(blocks.size());
  std::vector<double> cost(G + 1);
  for (int j = 0; j <= G; ++j) {
    const int last = j < G ? blocks[j] : c.n_layer - 1;  // the last block run
    double f = 0;
    for (int m = 0; m < c.n_layer; ++m) f += m <= last ? block[m] : kv;
    f += with_exits ? exit * double(std::min(j + 1, G)) + (j == G ? head : 0.0) : head;
    cost[j] = f;
  }
  for (int j = 0; j < G; ++j) cost[j] /= cost[G];
  cost[G] = 1;
  return cost;
}

ExitHeads::ExitHeads(ParamRegistry& heads, ParamRegistry& gates, const GptConfig& c,
                     const std::vector<int>& blocks)
    : heads_(heads), gates_(gates), blocks_(blocks) {
  for (size_t l = 0; l < blocks.size(); ++l) {
    MT_CHECK(blocks[l] >= 0 && blocks[l] < c.n_layer - 1 && (l == 0 || blocks[l] > blocks[l - 1]),
             "exits: block {} (ascending block indices below the last, {})", blocks[l],
             c.n_layer - 1);
    const std::string name = "exits/" + std::to_string(blocks[l]);
    w_.push_back(heads.add(name + "/head/w", {c.vocab, c.d_model}, Init::zeros()));
    b_.push_back(heads.add(name + "/head/b", {c.vocab}, Init::zeros()));
    // The gate: torch's nn.Linear(4, 1) default, U(-1/2, 1/2) (1 / sqrt(fan_in)).
    gw_.push_back(gates.add(name + "/gate/w", {4}, Init::uniform(0.5f)));
    gb_.push_back(gates.add(name + "/gate/b", {1}, Init::uniform(0.5f)));
  }
}

void ExitHeads::copy_embedding(const Tensor& wte) const {
  for (int w : w_) ops::copy(wte, heads_.value(w));
}

Tensor ExitHeads::logits(Arena& arena, const Gpt& model, const Tensor& h, int l, Tensor* u) const {
  const int64_t N = h.numel() / h.size(-1), V = model.config().vocab;
  // lnf where the backbone lives, then the exit on the host.
  const Tensor in = arena.to_host(model.final_norm(arena, h.view({N, h.size(-1)})));
  Tensor z = arena.host().alloc({N, V});
  ops::matmul(in, false, heads_.value(w_[l]), true, z);
  ops::add_rows(z, heads_.value(b_[l]));
  if (u) *u = in;
  return z;
}

ExitHeads::Reading ExitHeads::read(Arena& arena, const Tensor& z, const Tensor& targets) const {
  const int64_t N = z.size(0), V = z.size(1);
  const int32_t* y = targets.i32();
  Reading r;
  r.p_max.resize(N), r.correct.resize(N), r.features.resize(N), r.ce.resize(N);
  for (int64_t t = 0; t < N; ++t) {  // features and top-1 first, then z becomes softmax - onehot
    const float* row = z.f32() + t * V;
    r.features[t] = exit_features(row, V);
    r.p_max[t] = r.features[t][0];
    r.correct[t] = std::max_element(row, row + V) - row == y[t];
  }
  Tensor losses = arena.host().alloc({N});
  int64_t count = 0;
  ops::cross_entropy(z, targets, z, losses, 1.0f, &count);
  std::copy(losses.f32(), losses.f32() + N, r.ce.begin());
  r.dz = z;
  return r;
}

float ExitHeads::score(int l, const std::array<float, 4>& f) const {
  const float *w = gates_.value(gw_[l]).f32(), c = gates_.value(gb_[l]).f32()[0];
  return c + w[0] * f[0] + w[1] * f[1] + w[2] * f[2] + w[3] * f[3];
}

ExitHeads::Pass ExitHeads::forward(Arena& arena, const Gpt& model, const Gpt::Activations& acts,
                                   const Tensor& logits, const Tensor& targets) const {
  const int G = count();
  const int64_t N = targets.numel(), V = model.config().vocab;
  Pass pass;
  pass.tokens = N;
  pass.ce.resize(N * (G + 1)), pass.p_max.resize(N * (G + 1)), pass.correct.resize(N * (G + 1));
  pass.features.resize(N * G);
  pass.score.resize(N * G), pass.p.resize(N * G), pass.q.resize(N * G);
  pass.counted.resize(N);
  for (int64_t t = 0; t < N; ++t) pass.counted[t] = targets.i32()[t] >= 0;
  auto keep = [&](int l, const Reading& r) {
    for (int64_t t = 0; t < N; ++t) {
      const int64_t at = t * (G + 1) + l;
      pass.ce[at] = r.ce[t], pass.p_max[at] = r.p_max[t], pass.correct[at] = r.correct[t];
      if (l < G) pass.features[t * G + l] = r.features[t];
    }
  };
  for (int l = 0; l < G; ++l) {
    Tensor u;
    const Tensor z = this->logits(arena, model, model.block_output(acts, blocks_[l]), l, &u);
    const Reading r = read(arena, z, targets);
    keep(l, r);
    pass.u.push_back(u);
    pass.dz.push_back(r.dz);
  }
  Tensor z = arena.host().alloc({N, V});
  ops::copy(logits, z);
  keep(G, read(arena, z, targets));  // the backbone's own head: its CE, p_max and top-1
  std::vector<float> g(G);
  for (int64_t t = 0; t < N; ++t) {
    for (int l = 0; l < G; ++l) {
      const float s = score(l, pass.features[t * G + l]);
      pass.score[t * G + l] = s;
      g[l] = 1.0f / (1.0f + std::exp(-s));
    }
    exit_probabilities(g.data(), G, pass.p.data() + t * G, pass.q.data() + t * G);
  }
  return pass;
}

void ExitHeads::heads_backward(const Pass& pass, ImLoss kind, double normalizer) const {
  const int G = count();
  const int64_t N = pass.tokens;
  std::vector<float> ce(G), w(G);
  std::vector<float> scale(N * G, 0.0f);  // [N, G]: each row's weight / normalizer
  for (int64_t t = 0; t < N; ++t) {
    if (!pass.counted[t]) continue;
    for (int l = 0; l < G; ++l) ce[l] = pass.ce[t * (G + 1) + l];
    im_weights(kind, ce.data(), pass.p.data() + t * G, G, w.data());
    for (int l = 0; l < G; ++l) scale[t * G + l] = float(w[l] / normalizer);
  }
  for (int l = 0; l < G; ++l) {
    const Tensor& dz = pass.dz[l];
    const int64_t V = dz.size(1);
    // The scaled rows, in a copy: the pass's softmax - onehot serves both phases.
    std::vector<float> rows(dz.f32(), dz.f32() + dz.numel());
    for (int64_t t = 0; t < N; ++t)
      for (int64_t v = 0; v < V; ++v) rows[t * V + v] *= scale[t * G + l];
    const Tensor scaled{rows.data(), dz.shape};
    ops::matmul(scaled, true, pass.u[l], false, heads_.grad(w_[l]), 1.0f, 1.0f);
    ops::sum_rows_accumulate(scaled, heads_.grad(b_[l]));
  }
}

void ExitHeads::gates_backward(const Pass& pass, const float* dscore) const {
  const int G = count();
  for (int l = 0; l < G; ++l) {
    float *dw = gates_.grad(gw_[l]).f32(), *dc = gates_.grad(gb_[l]).f32();
    for (int64_t t = 0; t < pass.tokens; ++t) {
      if (!pass.counted[t]) continue;
      const float ds = dscore[t * G + l];
      const std::array<float, 4>& f = pass.features[t * G + l];
      for (int i = 0; i < 4; ++i) dw[i] += ds * f[i];
      dc[0] += ds;
    }
  }
}

}  // namespace mt
