// This rank's experts: E_local GELU FFNs whose weights are the rows [first, first + E_local) of
// the whole expert tensors experts/fc1/{w [E,d,f], b [E,f]}, experts/fc2/{w [E,f,d], b [E,d]}.
// Each expert runs its GEMMs on its own contiguous rows of the input.
#pragma once
#include <string>
#include <vector>

#include "model/ffn.hpp"

namespace mt {

class Experts {
 public:
  Experts(ParamRegistry& reg, const std::string& prefix, int num_experts, int first, int local,
          int64_t d, int64_t f, float proj_std);
  int first() const { return first_; }
  struct Cache {
    std::vector<FfnCache> per_expert;
    std::vector<int64_t> offsets;  // rows of local expert e: [offsets[e], offsets[e + 1])
  };
  // x [N, d], rows grouped by local expert; returns y [N, d].
  Tensor forward(Arena& arena, const Tensor& x, const std::vector<int64_t>& offsets,
                 Cache& cache) const;
  Tensor backward(Arena& arena, const Tensor& dy, const Cache& cache) const;  // returns dx

 private:
  FfnWeights slice(int e, bool grad) const;
  const ParamRegistry& reg_;
  int first_, local_;
  int w1_, b1_, w2_, b2_;
};

}  // namespace mt
