// Evaluation loop.
#include "train/evaluate.hpp"

#include <algorithm>

namespace mt {

LossValue evaluate(const Gpt& model, Arena& arena, const Batches& batches, int64_t batch_size,
                   int64_t max_batches) {
  const int64_t T = model.config().seq_len;
  const int64_t all = batches.windows();
  const int64_t used = max_batches > 0 ? std::min(all, max_batches * batch_size) : all;
  const int64_t stride = all / used;
  LossValue total;
  Gpt::Activations acts;
  for (int64_t first = 0; first < used; first += batch_size) {
    arena.reset();
    Tensor tokens = arena.alloc({batch_size, T}, DType::I32);
    Tensor targets = arena.alloc({batch_size, T}, DType::I32);
    // Row r takes window (first + r) * stride; rows past `used` are ignored.
    batches.fixed(first * stride, stride, used * stride, tokens, targets);
    Tensor logits = model.forward(arena, tokens, acts);
    const LossValue l = lm_loss(arena, logits, targets);
    total.sum += l.sum;
    total.count += l.count;
  }
  arena.reset();
  return total;
}

}  // namespace mt
