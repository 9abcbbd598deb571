// Linear layer y = x W + b with W stored [in, out] row-major (the checkpoint layout).
// The free functions serve every linear map (dense layers and each expert's slices).
#pragma once
#include <string>

#include "tensor/arena.hpp"
#include "tensor/params.hpp"

namespace mt {

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y);
// dx = dy W^T (written); dW += x^T dy; db += the column sums of dy (an empty db: taken elsewhere,
// as the FFN's fc1 does with its GELU).
void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& dx,
                     const Tensor& dw, const Tensor& db);

class Linear {
 public:
  Linear(ParamRegistry& reg, const std::string& prefix, int64_t in, int64_t out, float init_std);
  struct Cache {
    Tensor x;
  };
  Tensor forward(Arena& arena, const Tensor& x, Cache& cache) const;
  // Returns dx; accumulates dW and db.
  Tensor backward(Arena& arena, const Tensor& dy, const Cache& cache) const;

 private:
  const ParamRegistry& reg_;
  int w_, b_;
};

}  // namespace mt
