// ParamRegistry: every trainable tensor with a stable name (the checkpoint path under /model),
// a kind, and its initialisation. Values and gradients each live in one allocation; layers hold
// indices and read named views. The optimizer, gradient sync and checkpoints iterate this list.
#pragma once
#include <string>
#include <vector>

#include "tensor/buffer.hpp"

namespace mt {

enum class ParamKind { Replicated, Expert };

struct Init {
  enum Kind { Normal, Uniform, Zeros, Ones } kind = Zeros;
  float std = 0.0f;  // Uniform: the bound of U(-std, std)
  static Init normal(float s) { return {Normal, s}; }
  static Init uniform(float bound) { return {Uniform, bound}; }
  static Init zeros() { return {Zeros, 0.0f}; }
  static Init ones() { return {Ones, 0.0f}; }
};

struct ParamInfo {
  std::string name;
  Shape shape;  // this rank's part: for an expert tensor [E_local, ...]
  ParamKind kind;
  Init init;
  bool decay;               // AdamW weight decay applies (matrices; not biases or norm gains)
  int64_t offset = 0;       // into the flat value / gradient arrays
  int64_t global_rows = 0;  // dimension 0 of the whole tensor ([E, ...] for experts)
  int64_t row_offset = 0;   // first row held here (the first local expert's global id)
  int64_t row_elements() const { return shape.numel() / shape[0]; }
};

class ParamRegistry {
 public:
  // Registers a replicated parameter; returns its index. Only before allocate().
  int add(std::string name, Shape shape, Init init);
  // Registers this rank's rows [row_offset, row_offset + shape[0]) of an expert tensor whose
  // dimension 0 (the global expert id) has global_rows entries.
  int add_expert(std::string name, Shape shape, Init init, int64_t global_rows, int64_t row_offset);
  // One allocation for all values and one for all gradients (zeroed) on `device`; replicated
  // parameters first, then expert parameters, so each kind is one contiguous range.
  void allocate(Device device = Device::CPU);
  // Fills every value from its Init. Element i of the whole tensor is a pure function of
  // (seed, name, i): independent of registration order and of how experts are sharded.
  void initialize(uint64_t seed);
  // The contiguous [begin, end) element range of one kind (after allocate()).
  std::pair<int64_t, int64_t> range(ParamKind kind) const;

  size_t size() const { return params_.size(); }
  const ParamInfo& info(int i) const { return params_[i]; }
  const std::vector<ParamInfo>& all() const { return params_; }
  int find(const std::string& name) const;  // -1 if absent
  Tensor value(int i) const;
  Tensor grad(int i) const;
  int64_t total_elements() const { return total_; }
  Device device() const { return values_.device(); }
  // The flat arrays (on device()).
  float* values() { return values_.data(); }
  float* grads() { return grads_.data(); }
  const Buffer& value_buffer() const { return values_; }
  void zero_grads();

 private:
  Tensor view(const Buffer& store, int i) const;
  std::vector<ParamInfo> params_;
  Buffer values_, grads_;
  int64_t total_ = 0;
  bool allocated_ = false;
};

}  // namespace mt
