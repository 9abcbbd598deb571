// The permutation local search of COMET+ (Ibrahim et al. 2023; mazumder-lab/COMET
// model/permutations/learn_permutations.py): a soft permutation P = Sinkhorn(L / tau) of learned
// logits L [n, n], its backward, the schedules of tau and the iterations, and the hard
// permutation from the Hungarian assignment of the last soft one.
#pragma once
#include <cstdint>
#include <vector>

namespace mt {

// tau = 10^(-3 - 4 t / steps), log-linear from 1e-3 to 1e-7, at learning step t < steps.
double sinkhorn_tau(int64_t t, int64_t steps);
// int(20 + 130 t / steps) iterations.
int sinkhorn_iterations(int64_t t, int64_t steps);

// Log-space Sinkhorn of x = logits / tau [n, n]: `iterations` times subtract each row's
// log-sum-exp, then each column's; p = exp of the result (columns sum to 1, rows nearly).
// Keeps every iteration's input, for the backward.
struct Sinkhorn {
  int64_t n = 0;
  std::vector<std::vector<float>> inputs;  // per iteration [n, n]
  std::vector<float> p;                    // [n, n]
};
Sinkhorn sinkhorn(const float* logits, int64_t n, double tau, int iterations);
// dlogits [n, n] += d loss / d logits from dp [n, n] = d loss / d p, unrolled through every
// iteration (the 1 / tau included).
void sinkhorn_backward(const Sinkhorn& s, const float* dp, double tau, float* dlogits);

// The assignment of rows to columns that maximises sum_i w[i, col[i]] over [n, n] (the
// Hungarian method with potentials, O(n^3); ties go to the lower index): col[i] for each row.
std::vector<int> max_assignment(const float* w, int64_t n);

}  // namespace mt
