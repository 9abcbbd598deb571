// Arena implementation: 64-byte aligned bump allocation over a list of Buffers.
#include "tensor/arena.hpp"

#include <algorithm>

#include "tensor/ops.hpp"

namespace mt {

namespace {
constexpr size_t kAlign = 64;
size_t round_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}
size_t bytes_of(const Buffer& b) {
  return size_t(b.size()) * sizeof(float);
}
}  // namespace

Arena::Arena(Device device) : device_(device) {
  if (device != Device::CPU) host_ = std::make_unique<Arena>(Device::CPU);
}

size_t Arena::capacity() const {
  size_t n = 0;
  for (auto& b : blocks_) n += bytes_of(b);
  return n;
}

size_t Arena::system_allocations() const {
  return system_allocations_ + (host_ ? host_->system_allocations() : 0);
}

// A block of exactly what the allocation needs: a cycle that overflows holds only the bytes it
// uses, and reset() then makes one block for the whole cycle.
void Arena::add_block(size_t bytes) {
  blocks_.emplace_back(device_, int64_t(round_up(bytes) / sizeof(float)), Buffer::Fill::none);
  ++system_allocations_;
}

Tensor Arena::alloc(Shape s, DType t) {
  size_t bytes = round_up(std::max<size_t>(s.numel() * dtype_size(t), 1));
  while (current_ < blocks_.size() && offset_ + bytes > bytes_of(blocks_[current_])) {
    ++current_;
    offset_ = 0;
  }
  if (current_ == blocks_.size()) add_block(bytes);
  Tensor out{reinterpret_cast<char*>(blocks_[current_].data()) + offset_, s, t, device_};
  offset_ += bytes;
  used_ += bytes;
  peak_ = std::max(peak_, used_);
  return out;
}

Tensor Arena::zeros(Shape s, DType t) {
  Tensor out = alloc(s, t);
  zero_bytes(out);
  return out;
}

Tensor Arena::to_host(const Tensor& t) {
  if (t.device == Device::CPU) return t;
  Tensor h = host().alloc(t.shape, t.dtype);
  ops::copy(t, h);
  return h;
}

Tensor Arena::to_device(const Tensor& t) {
  if (t.device == device_) return t;
  Tensor d = alloc(t.shape, t.dtype);
  ops::copy(t, d);
  return d;
}

Arena::Scope::Scope(Arena& arena) : arena_(arena), device_(of(arena)), host_(of(arena.host())) {}

Arena::Scope::~Scope() {
  rewind(arena_, device_);
  if (&arena_.host() != &arena_) rewind(arena_.host(), host_);
}

void Arena::Scope::rewind(Arena& a, const Position& p) {
  a.current_ = p.current;
  a.offset_ = p.offset;
  a.used_ = p.used;
}

void Arena::reset() {
  if (host_) host_->reset();
  if (blocks_.size() > 1 && used_ > bytes_of(blocks_.front())) {
    // One block of the largest cycle's bytes plus 1/8: the headroom absorbs MoE steps whose
    // exchange buffers vary with the routing.
    blocks_.clear();
    add_block(peak_ + peak_ / 8);
  }
  current_ = 0;
  offset_ = 0;
  used_ = 0;
}

}  // namespace mt
