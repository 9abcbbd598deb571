// Arena: bump allocation of per-step tensors on one device. reset() frees everything at once;
// a Scope frees what was allocated while it lived (a block's backward temporaries). After the
// first step the arena holds one block large enough for a whole step, so later steps allocate
// nothing. Blocks are not zeroed: pages a step never touches stay out of resident memory. A GPU
// arena has a host arena beside it (host()) for the bookkeeping that routing does on the CPU; on a
// CPU arena host() is the arena itself.
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "tensor/buffer.hpp"

namespace mt {

class Arena {
 public:
  explicit Arena(Device device = Device::CPU);
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Device device() const { return device_; }
  Tensor alloc(Shape s, DType t = DType::F32);  // uninitialised
  Tensor zeros(Shape s, DType t = DType::F32);
  Arena& host() { return host_ ? *host_ : *this; }
  // t itself when it already lives on the host / on this arena's device, else a copy made here.
  Tensor to_host(const Tensor& t);
  Tensor to_device(const Tensor& t);
  // Forget every tensor handed out (here and in host()). If the last cycle overflowed into
  // several blocks they are replaced by one block of the largest cycle's size plus 1/8, so the
  // next cycle of the same shape fits without a system allocation.
  void reset();

  // On destruction, forgets every tensor handed out (here and in host()) since construction.
  // Nothing made inside may outlive it.
  class Scope {
   public:
    explicit Scope(Arena& arena);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    struct Position {
      size_t current, offset, used;
    };
    static Position of(const Arena& a) { return {a.current_, a.offset_, a.used_}; }
    static void rewind(Arena& a, const Position& p);
    Arena& arena_;
    Position device_, host_;
  };

  size_t system_allocations() const;
  size_t capacity() const;
  size_t peak_bytes() const { return peak_; }  // the most bytes one cycle used (this device)

 private:
  void add_block(size_t bytes);
  Device device_;
  std::unique_ptr<Arena> host_;  // GPU arenas only
  std::vector<Buffer> blocks_;
  size_t current_ = 0;  // block being filled
  size_t offset_ = 0;   // bytes used in blocks_[current_]
  size_t used_ = 0;     // bytes used in this cycle over all blocks
  size_t system_allocations_ = 0;
  size_t peak_ = 0;
};

}  // namespace mt
