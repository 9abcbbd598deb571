// Tensor: a typed, shaped view of memory it does not own (row-major, contiguous).
// Memory comes from an Arena (activations) or a ParamRegistry (weights, gradients).
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace mt {

enum class DType : uint8_t { F32, BF16, I32 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

// Up to four dimensions, stored inline so that making a shape never allocates.
class Shape {
 public:
  static constexpr int kMaxDims = 4;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  int ndim() const { return n_; }
  int64_t operator[](int i) const { return d_[i < 0 ? i + n_ : i]; }
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  Shape with_last(int64_t n) const;   // the same shape, last dimension replaced by n
  Shape with_first(int64_t n) const;  // the same shape, first dimension replaced by n
  std::string str() const;

 private:
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

struct Tensor {
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;

  bool empty() const { return data == nullptr; }  // Tensor{}: "none" where an op takes one
  int64_t numel() const { return shape.numel(); }
  int64_t size(int i) const { return shape[i]; }
  int ndim() const { return shape.ndim(); }
  // Elements between consecutive indices of dimension i (tensors are contiguous).
  int64_t stride(int i) const;
  size_t bytes() const { return numel() * dtype_size(dtype); }

  float* f32() const;
  uint16_t* bf16() const;  // the bits of bf16 values
  int32_t* i32() const;

  // The same memory with another shape of equal size.
  Tensor view(Shape s) const;
  // Rows [begin, end) of dimension 0.
  Tensor rows(int64_t begin, int64_t end) const;
  // Index i of dimension 0, that dimension dropped.
  Tensor operator[](int64_t i) const;
};

}  // namespace mt
