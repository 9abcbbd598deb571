// JEI-DNN's rules for early exits (docs/methods.md §9), per token and on the host: the gate's
// confidence features of an exit's softmax, the exit probabilities in the authors' min form and
// the q >= 0.5 exit rule, the oracle exit and its gate targets, the gates' positive weights, the
// weighted BCE of the gate phase and the per-exit weights of the IM losses. Exits l = 0..G-1
// are the intermediate ones; G is the backbone's own head.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace mt {

// [p_max, entropy, p_max - p_second, entropy of p^2 / sum p^2] of softmax(z) over V logits
// (natural logs, p clamped to >= 1e-30 inside them). No gradient flows through them.
std::array<float, 4> exit_features(const float* z, int64_t V);

// From the gates' g_l = sigmoid(s_l), l < G: p_l = max(0, min(g_l, 1 - sum_{m<l} g_m)) and the
// conditional q_l = clip(p_l / prod_{m<l} (1 - q_m), 0, 1). Writes p and q ([G] each).
void exit_probabilities(const float* g, int G, float* p, float* q);
// The first l with q_l >= 0.5, else G (the backbone's head): deterministic, never sampled.
int exit_at(const float* q, int G);

// The oracle exit: the first argmin over l = 0..G of ce[l] + lambda * cost[l] (cost[G] = 1).
int oracle_exit(const float* ce, const std::vector<double>& cost, double lambda);
// The gates' positive-class weights from the count n_l of tokens whose oracle exit is l (of N):
// min((N - max(n_l, 0.1)) / max(n_l, 0.1), 5) for l < G.
std::vector<float> positive_weights(const std::vector<double>& oracle_counts, double N);

// The gate phase's loss over T tokens: sum over (t, l < G) of m * BCEWithLogits(s, y), with
// y = 1[l >= oracle_t], m = pos_weight[l] where y = 1 (else 1), divided by normalizer (the
// global N * G). score [T, G]; writes dscore [T, G]; returns the (unnormalised) sum. A token
// whose oracle is < 0 (padding) counts nowhere.
double gate_bce(const float* score, const int32_t* oracle, int64_t T, int G,
                const std::vector<float>& pos_weight, double normalizer, float* dscore);

// The IM losses' weight of token t at exit l < G, each sum then divided by the normaliser:
// warm-up (G + 1 - l); "code" (the authors' released code, whose exit-probability weighting
// cancels in value and gradient) 1; "intent" (that weighting with its ratio detached)
// p_l * S / R, S = sum_m ce_m, R = sum_m p_m ce_m over m < G. ce [G], p [G]; writes w [G].
enum class ImLoss { Warmup, Code, Intent };
void im_weights(ImLoss kind, const float* ce, const float* p, int G, float* w);

}  // namespace mt
