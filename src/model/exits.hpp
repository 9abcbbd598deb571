// JEI-DNN's early exits on a frozen GPT (docs/methods.md §9): after chosen blocks, an
// intermediate inference module (IM: the backbone's final LayerNorm, shared and frozen, then
// the exit's own head z = u W^T + b, W initialised from the tied embedding) and a gate
// s = w . f + c on the four confidence features of the IM's softmax. The heads and the gates
// live in two registries (the two phases train one each); the backbone gets no gradient.
// Everything here runs on the host.
#pragma once
#include <array>
#include <vector>

#include "model/exit_rules.hpp"
#include "model/gpt.hpp"

namespace mt {

// The cost of exit j = 0..G (G: the backbone's head) as a share of the final exit's, in forward
// FLOPs per token (docs/methods.md §9.5). with_exits: JEI's accounting, where an exit's cost
// includes every IM and gate passed and the final exit's all of them; else the backbone alone
// (blocks up to the exit, the K/V of the blocks after it, and the head the exit uses).
// choices: experts per token in a MoE block.
std::vector<double> exit_costs(const GptConfig& c, const std::vector<int>& blocks, int choices,
                               bool with_exits);

class ExitHeads {
 public:
  // Exit l after block blocks[l] (ascending, each below the last block).
  ExitHeads(ParamRegistry& heads, ParamRegistry& gates, const GptConfig& c,
            const std::vector<int>& blocks);
  int count() const { return int(blocks_.size()); }
  int block(int l) const { return blocks_[l]; }
  // The heads registry's indices of exit l's head: W, b.
  std::vector<int> head_params(int l) const { return {w_[l], b_[l]}; }
  const std::vector<int>& blocks() const { return blocks_; }
  // Every head's W := wte [V, d] (after the registries are allocated; b starts at zero, and the
  // gates from their registry's initialize).
  void copy_embedding(const Tensor& wte) const;

  // Everything one pass over N tokens leaves (l < G = count(); the final exit is index G).
  struct Pass {
    int64_t tokens = 0;            // N
    std::vector<Tensor> u, dz;     // per exit: lnf(h) [N, d]; softmax(z) - onehot [N, V]
    std::vector<float> ce;         // [N, G + 1]: each exit's cross-entropy, the final last
    std::vector<float> p_max;      // [N, G + 1]: each exit's top probability
    std::vector<int32_t> correct;  // [N, G + 1]: 1 where the exit's top token is the target
    std::vector<std::array<float, 4>> features;  // [N, G]
    std::vector<float> score, p, q;  // [N, G]: s, min-form exit and conditional probabilities
    std::vector<uint8_t> counted;    // [N]: the target is a token (not padding)
  };
  // From a backbone forward's activations and logits [N, V] (any device) and targets [N] (host).
  Pass forward(Arena& arena, const Gpt& model, const Gpt::Activations& acts, const Tensor& logits,
               const Tensor& targets) const;

  // One exit's reading of N tokens (forward serves it for every exit).
  struct Reading {
    Tensor dz;                                   // [N, V] on the host: softmax(z) - onehot
    std::vector<float> ce, p_max;                // [N]
    std::vector<int32_t> correct;                // [N]
    std::vector<std::array<float, 4>> features;  // [N]
  };
  // Exit l < G's logits [N, V] (host) from block output h [N, d] (any device); u: lnf(h).
  Tensor logits(Arena& arena, const Gpt& model, const Tensor& h, int l, Tensor* u = nullptr) const;
  // The reading of logits z [N, V] (host; turned into dz in place) for targets [N] (host).
  Reading read(Arena& arena, const Tensor& z, const Tensor& targets) const;
  // Gate l's score s = w . f + c.
  float score(int l, const std::array<float, 4>& f) const;
  // Accumulates every head's gradient for the IM loss: sum over counted t, l < G of
  // w(t, l) * ce(t, l) / normalizer, with w from im_weights(kind, ...).
  void heads_backward(const Pass& pass, ImLoss kind, double normalizer) const;
  // Accumulates every gate's gradient from dscore [N, G].
  void gates_backward(const Pass& pass, const float* dscore) const;

 private:
  ParamRegistry &heads_, &gates_;
  std::vector<int> blocks_;
  std::vector<int> w_, b_, gw_, gb_;  // per exit: head W [V, d], b [V]; gate w [4], c [1]
};

}  // namespace mt
