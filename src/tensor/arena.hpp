// Arena: bump allocation of per-step tensors. reset() frees everything at once; after the first
// step the arena holds one block large enough for a whole step, so later steps allocate nothing.
#pragma once
#include <cstddef>
#include <vector>

#include "tensor/tensor.hpp"

namespace mt {

class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena();

  Tensor alloc(Shape s, DType t = DType::F32);  // uninitialised
  Tensor zeros(Shape s, DType t = DType::F32);
  // Forget every tensor handed out. If the last cycle overflowed into several blocks they are
  // merged into one, so the next cycle of the same shape fits without a system allocation.
  void reset();

  size_t system_allocations() const { return system_allocations_; }
  size_t capacity() const;

 private:
  struct Block {
    char* ptr;
    size_t size;
  };
  void add_block(size_t min_bytes);
  std::vector<Block> blocks_;
  size_t current_ = 0;  // block being filled
  size_t offset_ = 0;   // bytes used in blocks_[current_]
  size_t used_ = 0;     // bytes used in this cycle over all blocks
  size_t system_allocations_ = 0;
};

}  // namespace mt
