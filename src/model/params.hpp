// ParamRegistry: every trainable tensor with a stable name (the checkpoint path under /model),
// a kind, and its initialisation. Values and gradients each live in one allocation; layers hold
// indices and read named views. The optimizer, gradient sync and checkpoints iterate this list.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace mt {

enum class ParamKind { Replicated, Expert };

struct Init {
  enum Kind { Normal, Zeros, Ones } kind = Zeros;
  float std = 0.0f;
  static Init normal(float s) { return {Normal, s}; }
  static Init zeros() { return {Zeros, 0.0f}; }
  static Init ones() { return {Ones, 0.0f}; }
};

struct ParamInfo {
  std::string name;
  Shape shape;
  ParamKind kind;
  Init init;
  bool decay;      // AdamW weight decay applies (matrices; not biases or norm gains)
  int64_t offset;  // into the flat value / gradient arrays
};

class ParamRegistry {
 public:
  // Registers a parameter; returns its index. Only before allocate().
  int add(std::string name, Shape shape, Init init, ParamKind kind = ParamKind::Replicated);
  // One allocation for all values and one for all gradients (zeroed).
  void allocate();
  // Fills every value from its Init. Element i of parameter p is a pure function of
  // (seed, p's name, i), so the result does not depend on the order of registration.
  void initialize(uint64_t seed);

  size_t size() const { return params_.size(); }
  const ParamInfo& info(int i) const { return params_[i]; }
  const std::vector<ParamInfo>& all() const { return params_; }
  int find(const std::string& name) const;  // -1 if absent
  Tensor value(int i) const;
  Tensor grad(int i) const;
  int64_t total_elements() const { return total_; }
  float* values() { return values_.data(); }
  float* grads() { return grads_.data(); }
  void zero_grads();

 private:
  Tensor view(const std::vector<float>& store, int i) const;
  std::vector<ParamInfo> params_;
  std::vector<float> values_, grads_;
  int64_t total_ = 0;
  bool allocated_ = false;
};

}  // namespace mt
