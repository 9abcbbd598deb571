// Buffer allocation on the host or through the CUDA pool.
#include "tensor/buffer.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#include "tensor/ops/bf16.hpp"
#ifdef MOETRAIN_CUDA
#include "tensor/cuda/runtime.hpp"
#endif

namespace mt {

Buffer::Buffer(Device device, int64_t floats, Fill fill) : device_(device) {
  allocate(floats, fill);
}

Buffer::~Buffer() {
  release();
}

Buffer::Buffer(Buffer&& o) noexcept
    : device_(o.device_),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    device_ = o.device_;
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void Buffer::release() {
  if (!data_) return;
#ifdef MOETRAIN_CUDA
  if (device_ == Device::CUDA) cuda::release(data_);
#endif
  if (device_ == Device::CPU) {
    cpu::forget_bf16_weights(data_, size_);
    std::free(data_);
  }
  data_ = nullptr;
  size_ = 0;
}

void Buffer::reserve(int64_t n) {
  if (n <= size_ && data_) return;
  allocate(n, Fill::zeros);
}

void Buffer::allocate(int64_t n, Fill fill) {
  release();
  const size_t bytes = (std::max<size_t>(n, 1) * sizeof(float) + 63) / 64 * 64;
  if (device_ == Device::CPU) {
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!data_) throw std::bad_alloc();
  } else {
#ifdef MOETRAIN_CUDA
    data_ = static_cast<float*>(cuda::alloc(bytes));
#else
    fail("a CUDA buffer in a build without CUDA");
#endif
  }
  size_ = n;
  if (fill == Fill::zeros) zero_bytes(all());
}

Tensor Buffer::view(Shape s, int64_t offset, DType t) const {
  MT_CHECK(offset >= 0 && 4 * offset + s.numel() * int64_t(dtype_size(t)) <= 4 * size_,
           "buffer of {} floats: no view {} at {}", size_, s.str(), offset);
  return Tensor{data_ + offset, s, t, device_};
}

float* host_floats(const Buffer& b, std::vector<float>& staging) {
  if (b.device() == Device::CPU) return b.data();
  staging.resize(b.size());
  ops::copy(b.all(), Tensor{staging.data(), {b.size()}});
  return staging.data();
}

void store_host_floats(const Buffer& b, const std::vector<float>& staging) {
  if (b.device() == Device::CPU) return;
  MT_CHECK(int64_t(staging.size()) == b.size(), "store_host_floats: {} staged floats for {}",
           staging.size(), b.size());
  ops::copy(Tensor{const_cast<float*>(staging.data()), {b.size()}}, b.all());
}

void zero_bytes(const Tensor& t) {
  if (t.bytes() == 0) return;
  if (t.device == Device::CPU) {
    std::memset(t.data, 0, t.bytes());
    return;
  }
#ifdef MOETRAIN_CUDA
  cuda::zero(t.data, t.bytes());
#else
  fail("a CUDA tensor in a build without CUDA");
#endif
}

}  // namespace mt
