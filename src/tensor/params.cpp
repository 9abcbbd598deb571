// ParamRegistry implementation: flat storage, named views, deterministic initialisation.
#include "tensor/params.hpp"

#include <algorithm>

#include "tensor/error.hpp"
#include "tensor/rng.hpp"

namespace mt {

int ParamRegistry::add(std::string name, Shape shape, Init init) {
  return add_expert(std::move(name), shape, init, shape[0], -1);
}

int ParamRegistry::add_expert(std::string name, Shape shape, Init init, int64_t global_rows,
                              int64_t row_offset) {
  MT_CHECK(!allocated_, "parameter '{}' registered after allocation", name);
  MT_CHECK(find(name) < 0, "parameter '{}' registered twice", name);
  const ParamKind kind = row_offset < 0 ? ParamKind::Replicated : ParamKind::Expert;
  // Decay matrices; an expert tensor [E, in, out] is a stack of matrices, [E, out] of biases.
  const bool decay = shape.ndim() - (kind == ParamKind::Expert) >= 2;
  params_.push_back({std::move(name), shape, kind, init, decay, 0, global_rows,
                     std::max<int64_t>(row_offset, 0)});
  total_ += shape.numel();
  return int(params_.size()) - 1;
}

void ParamRegistry::allocate(Device device) {
  MT_CHECK(!allocated_, "parameters allocated twice");
  int64_t offset = 0;
  for (ParamKind kind : {ParamKind::Replicated, ParamKind::Expert})
    for (auto& p : params_)
      if (p.kind == kind) {
        p.offset = offset;
        offset += p.shape.numel();
      }
  values_ = Buffer(device, total_);
  grads_ = Buffer(device, total_);
  allocated_ = true;
}

void ParamRegistry::initialize(uint64_t seed) {
  MT_CHECK(allocated_, "parameters initialised before allocation");
  std::vector<float> staging;
  float* values = host_floats(values_, staging);
  for (const auto& p : params_) {
    float* v = values + p.offset;
    const int64_t n = p.shape.numel();
    // Random draws: a pure function of the seed, the name and the element's global index.
    const Rng rng(seed, stream_id({name_hash("init"), name_hash(p.name.c_str())}));
    const int64_t first = p.row_offset * p.row_elements();
    switch (p.init.kind) {
      case Init::Zeros:
        std::fill(v, v + n, 0.0f);
        break;
      case Init::Ones:
        std::fill(v, v + n, 1.0f);
        break;
      case Init::Normal:
        for (int64_t i = 0; i < n; ++i) v[i] = p.init.std * rng.normal(uint64_t(first + i));
        break;
      case Init::Uniform:
        for (int64_t i = 0; i < n; ++i)
          v[i] = p.init.std * (2.0f * rng.uniform(uint64_t(first + i)) - 1.0f);
        break;
    }
  }
  store_host_floats(values_, staging);
}

int ParamRegistry::find(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].name == name) return int(i);
  return -1;
}

// Tensors are non-owning views without constness; a view of a const registry is still writable.
Tensor ParamRegistry::view(const Buffer& store, int i) const {
  MT_CHECK(allocated_, "parameter '{}' used before allocation", params_[i].name);
  return store.view(params_[i].shape, params_[i].offset);
}

Tensor ParamRegistry::value(int i) const {
  return view(values_, i);
}
Tensor ParamRegistry::grad(int i) const {
  return view(grads_, i);
}

std::pair<int64_t, int64_t> ParamRegistry::range(ParamKind kind) const {
  int64_t begin = total_, end = 0;
  for (const auto& p : params_)
    if (p.kind == kind) {
      begin = std::min(begin, p.offset);
      end = std::max(end, p.offset + p.shape.numel());
    }
  return begin < end ? std::make_pair(begin, end) : std::make_pair(int64_t(0), int64_t(0));
}

void ParamRegistry::zero_grads() {
  zero_bytes(grads_.all());
}

}  // namespace mt
