// Buffer: owning storage of floats on one device (host: 64-byte aligned; CUDA: the device pool),
// zeroed when made unless asked not to be. The parameter registry, the optimizer's moments, the
// arena's blocks and the all-to-all's staging live in Buffers, so one code path serves both
// devices.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.hpp"

namespace mt {

class Buffer {
 public:
  enum class Fill { zeros, none };  // none: the arena's blocks, whose pages stay untouched
  Buffer() = default;
  Buffer(Device device, int64_t floats, Fill fill = Fill::zeros);
  ~Buffer();
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  // At least n floats (a larger buffer, zeroed, when it must grow: contents are not kept).
  void reserve(int64_t n);
  float* data() const { return data_; }
  int64_t size() const { return size_; }
  Device device() const { return device_; }
  // A view of [offset, offset + s.numel()) as shape s.
  Tensor view(Shape s, int64_t offset = 0, DType t = DType::F32) const;
  Tensor all() const { return view({size_}); }

 private:
  void release();
  void allocate(int64_t n, Fill fill);
  Device device_ = Device::CPU;
  float* data_ = nullptr;
  int64_t size_ = 0;
};

// Zeroes a tensor's bytes on its device.
void zero_bytes(const Tensor& t);

// The buffer's floats on the host for reading or writing: its own memory on the CPU, else a
// copy in `staging`. After writing, store_host_floats puts a staged copy back on the GPU.
float* host_floats(const Buffer& b, std::vector<float>& staging);
void store_host_floats(const Buffer& b, const std::vector<float>& staging);

}  // namespace mt
