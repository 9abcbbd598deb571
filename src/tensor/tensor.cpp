// Shape and Tensor view arithmetic, with checks that turn misuse into mt::Error.
#include "tensor/tensor.hpp"

#include <fmt/format.h>

#include "tensor/error.hpp"

namespace mt {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::BF16:
      return 2;
    case DType::I32:
      return 4;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::BF16:
      return "bf16";
    case DType::I32:
      return "i32";
  }
  return "?";
}

Shape::Shape(std::initializer_list<int64_t> dims) {
  MT_CHECK(dims.size() <= kMaxDims, "shape with {} dims (at most {})", dims.size(), kMaxDims);
  for (int64_t v : dims) {
    MT_CHECK(v >= 0, "negative dimension {}", v);
    d_[n_++] = v;
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < n_; ++i) n *= d_[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (n_ != o.n_) return false;
  for (int i = 0; i < n_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

Shape Shape::with_last(int64_t n) const {
  Shape s = *this;
  s.d_[n_ - 1] = n;
  return s;
}

Shape Shape::with_first(int64_t n) const {
  Shape s = *this;
  s.d_[0] = n;
  return s;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < n_; ++i) s += fmt::format("{}{}", i ? "," : "", d_[i]);
  return s + "]";
}

int64_t Tensor::stride(int i) const {
  if (i < 0) i += ndim();
  int64_t s = 1;
  for (int j = i + 1; j < ndim(); ++j) s *= shape[j];
  return s;
}

float* Tensor::f32() const {
  MT_CHECK(dtype == DType::F32, "tensor {} is {}, not f32", shape.str(), dtype_name(dtype));
  return static_cast<float*>(data);
}

uint16_t* Tensor::bf16() const {
  MT_CHECK(dtype == DType::BF16, "tensor {} is {}, not bf16", shape.str(), dtype_name(dtype));
  return static_cast<uint16_t*>(data);
}

int32_t* Tensor::i32() const {
  MT_CHECK(dtype == DType::I32, "tensor {} is {}, not i32", shape.str(), dtype_name(dtype));
  return static_cast<int32_t*>(data);
}

Tensor Tensor::view(Shape s) const {
  MT_CHECK(s.numel() == numel(), "cannot view {} as {}", shape.str(), s.str());
  Tensor t = *this;
  t.shape = s;
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  MT_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= shape[0],
           "rows [{}, {}) out of range for {}", begin, end, shape.str());
  Tensor t = *this;
  t.data = static_cast<char*>(data) + begin * stride(0) * dtype_size(dtype);
  t.shape = shape.with_first(end - begin);
  return t;
}

Tensor Tensor::operator[](int64_t i) const {
  Tensor t = rows(i, i + 1);
  switch (ndim()) {
    case 1:
      t.shape = {};
      break;
    case 2:
      t.shape = {shape[1]};
      break;
    case 3:
      t.shape = {shape[1], shape[2]};
      break;
    default:
      t.shape = {shape[1], shape[2], shape[3]};
      break;
  }
  return t;
}

}  // namespace mt
