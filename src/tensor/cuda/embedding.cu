// Token + position embedding: forward and backward side by side. The token-table gradient is
// deterministic without atomics: the positions are grouped by token id on the host (a counting
// sort, in position order within a token), then one block per distinct token sums its rows.
#include <vector>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/kernels.hpp"

namespace mt::cuda {

namespace {

__global__ void embedding_kernel(const int32_t* tok, const float* wte, const float* wpe, float* out,
                                 int64_t n, int64_t T, int64_t d) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n * d;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / d, j = e % d;
    out[e] = wte[int64_t(tok[i]) * d + j] + wpe[(i % T) * d + j];
  }
}

// dwpe[t] += sum_b dout[b, t] in batch order; one thread per element of dwpe.
__global__ void position_grad_kernel(const float* dout, float* dwpe, int64_t n, int64_t T,
                                     int64_t d) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < T * d;
       e += int64_t(gridDim.x) * blockDim.x) {
    float s = 0;
    for (int64_t i = e / d; i < n; i += T) s += dout[i * d + e % d];
    dwpe[e] += s;
  }
}

// Block u: token ids[u]; its positions are pos[start[u] .. start[u + 1]).
__global__ void token_grad_kernel(const int32_t* ids, const int32_t* start, const int32_t* pos,
                                  const float* dout, float* dwte, int64_t d) {
  const int u = blockIdx.x;
  float* row = dwte + int64_t(ids[u]) * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    float s = 0;
    for (int32_t a = start[u]; a < start[u + 1]; ++a) s += dout[int64_t(pos[a]) * d + j];
    row[j] += s;
  }
}

}  // namespace

void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out,
                       int64_t n, int64_t T, int64_t d) {
  embedding_kernel<<<grid_for(n * d), 256, 0, cu_stream()>>>(tokens, wte, wpe, out, n, T, d);
  check_launch("embedding");
}

void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe,
                        int64_t n, int64_t T, int64_t d) {
  if (n == 0) return;
  position_grad_kernel<<<grid_for(T * d), 256, 0, cu_stream()>>>(dout, dwpe, n, T, d);
  check_launch("position_grad");
  std::vector<int32_t> tok(n);
  copy(tok.data(), tokens, n * sizeof(int32_t));
  // Distinct ids in first-seen order, each with its positions in order.
  std::vector<int32_t> ids, count, slot(n);
  std::vector<int32_t> index_of;  // id -> index into ids, grown on demand
  for (int64_t i = 0; i < n; ++i) {
    if (tok[i] >= int32_t(index_of.size())) index_of.resize(tok[i] + 1, -1);
    int32_t& u = index_of[tok[i]];
    if (u < 0) u = int32_t(ids.size()), ids.push_back(tok[i]), count.push_back(0);
    slot[i] = u;
    ++count[u];
  }
  const int64_t U = int64_t(ids.size());
  std::vector<int32_t> table(U + (U + 1) + n);  // ids, start, pos
  int32_t *start = table.data() + U, *pos = start + U + 1;
  std::copy(ids.begin(), ids.end(), table.begin());
  start[0] = 0;
  for (int64_t u = 0; u < U; ++u) start[u + 1] = start[u] + count[u];
  std::vector<int32_t> fill(start, start + U);
  for (int64_t i = 0; i < n; ++i) pos[fill[slot[i]]++] = int32_t(i);
  auto* dev = static_cast<int32_t*>(alloc(table.size() * sizeof(int32_t)));
  copy(dev, table.data(), table.size() * sizeof(int32_t));
  token_grad_kernel<<<unsigned(U), row_threads(std::min<int64_t>(d, 256)), 0, cu_stream()>>>(
      dev, dev + U, dev + 2 * U + 1, dout, dwte, d);
  check_launch("token_grad");
  synchronize();  // the table goes back to the pool
  release(dev);
}

}  // namespace mt::cuda
