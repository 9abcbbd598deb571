// Arena implementation: 64-byte aligned bump allocation over a list of blocks.
#include "tensor/arena.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace mt {

namespace {
constexpr size_t kAlign = 64;
size_t round_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}
}  // namespace

Arena::~Arena() {
  for (auto& b : blocks_) std::free(b.ptr);
}

size_t Arena::capacity() const {
  size_t n = 0;
  for (auto& b : blocks_) n += b.size;
  return n;
}

void Arena::add_block(size_t min_bytes) {
  size_t size =
      round_up(std::max(min_bytes, blocks_.empty() ? size_t(1) << 20 : 2 * blocks_.back().size));
  void* p = std::aligned_alloc(kAlign, size);
  if (!p) throw std::bad_alloc();
  blocks_.push_back({static_cast<char*>(p), size});
  ++system_allocations_;
}

Tensor Arena::alloc(Shape s, DType t) {
  size_t bytes = round_up(std::max<size_t>(s.numel() * dtype_size(t), 1));
  while (current_ < blocks_.size() && offset_ + bytes > blocks_[current_].size) {
    ++current_;
    offset_ = 0;
  }
  if (current_ == blocks_.size()) add_block(bytes);
  Tensor out{blocks_[current_].ptr + offset_, s, t, Device::CPU};
  offset_ += bytes;
  used_ += bytes;
  return out;
}

Tensor Arena::zeros(Shape s, DType t) {
  Tensor out = alloc(s, t);
  std::memset(out.data, 0, out.bytes());
  return out;
}

void Arena::reset() {
  if (blocks_.size() > 1 && used_ > blocks_.front().size) {
    size_t total = capacity();
    for (auto& b : blocks_) std::free(b.ptr);
    blocks_.clear();
    add_block(total);
  }
  current_ = 0;
  offset_ = 0;
  used_ = 0;
}

}  // namespace mt
