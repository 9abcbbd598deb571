// The op set the model needs, on float32 tensors of either device: each op runs where its
// tensors live (all of one call's tensors on one device). CPU: OpenBLAS GEMMs and OpenMP loops
// (tensor/ops/); CUDA: cuBLAS and kernels (tensor/cuda/), queued on the rank's stream.
// Conventions: outputs are overwritten unless the name or comment says "accumulate" (+=);
// a matrix argument is any tensor viewed as [numel / last_dim, last_dim].
#pragma once
#include <cstdint>

#include "tensor/tensor.hpp"

namespace mt::ops {

// c = alpha * op(a) * op(b) + beta * c, op = transpose when t* is set. On the CPU a or b may be
// bf16 (an activation its producer wrote so, see product_input_dtype): the product is then bf16.
void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, const Tensor& c, float alpha = 1,
            float beta = 0);

// The process's matmul precision. bf16: every matmul rounds its inputs to bf16 and accumulates in
// fp32 into fp32 outputs (CPU: oneDNN on AVX512_BF16; CUDA: cuBLAS's fast-bf16 compute); fp32
// (the default): fp32 throughout. Weights, gradients, optimizer state and every other op stay fp32.
void set_bf16_matmul(bool on);
bool bf16_matmul();
// The dtype in which a producer on `device` writes an activation that only matmuls read: bf16
// under bf16 matmuls on the CPU (rounded once as it is written, half the bytes), else fp32.
DType product_input_dtype(Device device);
// While one lives, matmuls run in fp32 whatever the precision: the routers, as Switch
// Transformer's selective precision keeps them for stable routing.
class Fp32Matmuls {
 public:
  Fp32Matmuls();
  ~Fp32Matmuls();
  Fp32Matmuls(const Fp32Matmuls&) = delete;
  Fp32Matmuls& operator=(const Fp32Matmuls&) = delete;

 private:
  bool saved_;
};
// With bf16 matmuls on the CPU: makes the bf16 copy of the parameters' values (the registry's
// flat array) that matmuls read in place of converting a weight at each use. Call it after the
// values change and before they are multiplied: Gpt::forward does, once per pass. Else nothing.
void prepare_bf16_weights(const Tensor& values);
// While one lives, bf16 matmuls on the CPU read t's bf16 copy, made once here, instead of
// converting t at every product it enters (an output gradient's two products, dx and dW). t must
// not change meanwhile; not inside an OpenMP parallel region. Else (fp32, the GPU) nothing.
class SharedBf16Operand {
 public:
  explicit SharedBf16Operand(const Tensor& t);
  ~SharedBf16Operand();
  SharedBf16Operand(const SharedBf16Operand&) = delete;
  SharedBf16Operand& operator=(const SharedBf16Operand&) = delete;

 private:
  const float* shared_ = nullptr;
};

// src -> dst, any devices, equal bytes and dtype; returns when the copy is done.
void copy(const Tensor& src, const Tensor& dst);

// Elementwise and reductions.
void fill(const Tensor& t, float v);
void add(const Tensor& a, const Tensor& b, const Tensor& out);  // out = a + b
void mul(const Tensor& a, const Tensor& b, const Tensor& out);  // out = a * b (dropout masks)
void add_rows(const Tensor& y, const Tensor& bias);             // y[r, :] += bias
void sum_rows_accumulate(const Tensor& dy, const Tensor& db);   // db += sum_r dy[r, :]
double sum_squares(const Tensor& t);

// GELU, tanh form: gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), fused with the bias
// before it so that the FFN's hidden layer is walked once each way. Forward: y[r, :] += bias, then
// act = gelu(y) (act fp32, or bf16 on the CPU: see product_input_dtype). Backward:
// d = gelu'(x) * d in place, and db += sum_r d[r, :].
void bias_gelu(const Tensor& y, const Tensor& bias, const Tensor& act);
void gelu_backward_bias(const Tensor& x, const Tensor& d, const Tensor& db);

// LayerNorm over the last dimension, eps 1e-5. mean, rstd: [rows].
void layernorm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& y,
                       const Tensor& mean, const Tensor& rstd);
// The residual add and the LayerNorm after it in one pass: sum = x + a, then y = LayerNorm(sum).
void add_layernorm_forward(const Tensor& x, const Tensor& a, const Tensor& sum, const Tensor& gamma,
                           const Tensor& beta, const Tensor& y, const Tensor& mean,
                           const Tensor& rstd);
// Accumulates into dx, dgamma and dbeta.
void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& rstd, const Tensor& dx, const Tensor& dgamma,
                        const Tensor& dbeta);

// Causal multi-head self-attention on packed qkv [B, T, 3d] -> out [B, T, d];
// probs [B, H, T, T] keeps the softmax for the backward pass. With a dropout mask [B, H, T, T]
// (scale factors; empty: none) the values are weighted by dropped = probs * mask.
void attention_forward(const Tensor& qkv, int n_head, const Tensor& out, const Tensor& probs,
                       const Tensor& mask = {}, const Tensor& dropped = {});
// dqkv [B, T, 3d] is overwritten; scratch [B, H, T, T]; mask and dropped as in the forward.
void attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& probs, int n_head,
                        const Tensor& dqkv, const Tensor& scratch, const Tensor& mask = {},
                        const Tensor& dropped = {});

// out[b, t] = wte[tokens[b, t]] + wpe[t]; the backward accumulates into dwte and dwpe.
void embedding_forward(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                       const Tensor& out);
void embedding_backward(const Tensor& tokens, const Tensor& dout, const Tensor& dwte,
                        const Tensor& dwpe);

// Softmax cross-entropy of logits [N, V] against targets [N] (a target < 0 is ignored), with
// fairseq's label smoothing eps: the target distribution q puts 1 - eps on the target and
// eps / (V - 1) on every other class (eps = 0: one-hot). Writes each row's loss -sum_v q_v log p_v
// to losses [N] and dlogits = (softmax - q) * grad_scale (dlogits may alias logits). Returns the
// loss summed in row order; *count gets the number of counted rows.
double cross_entropy(const Tensor& logits, const Tensor& targets, const Tensor& dlogits,
                     const Tensor& losses, float grad_scale, int64_t* count,
                     float smoothing = 0.0f);

// THOR's consistency regularisation: per row with target >= 0, the symmetric KL
// CR = 0.5 sum_v (P1 - P2)(log P1 - log P2) of P = softmax(z). Writes each row's value to
// row_values and dz1, dz2 = grad_scale * dCR/dz; returns the sum over rows (in row order).
double symmetric_kl(const Tensor& z1, const Tensor& z2, const Tensor& targets, const Tensor& dz1,
                    const Tensor& dz2, const Tensor& row_values, float grad_scale);

// Rows of the MoE layer's dispatch and combine (index and slot tensors are i32).
// out[a, :] = src[index[a], :]
void gather_rows(const Tensor& src, const Tensor& index, const Tensor& out);
// out[t, :] += sum over j (in order) with slot[t, j] >= 0 of weight[t, j] * src[slot[t, j], :];
// slot and weight are [T, k]; an empty weight (no data) means weight 1.
void combine_rows(const Tensor& src, const Tensor& slot, const Tensor& weight, const Tensor& out);
// The backward of combine_rows for dy [T, d]: for each kept (t, j), dweight[t, j] = <dy[t],
// src[a]> and dsrc[a] = weight[t, j] dy[t] with a = slot[t, j] (other entries are left alone).
void combine_rows_backward(const Tensor& dy, const Tensor& src, const Tensor& slot,
                           const Tensor& weight, const Tensor& dsrc, const Tensor& dweight);

// One AdamW update of n elements (decoupled weight decay, bias-corrected moments), reading each
// gradient times grad_scale (global-norm clipping, applied here rather than in a pass of its own).
struct AdamWStep {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based
  float grad_scale = 1;
};
void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                  const AdamWStep& s);

}  // namespace mt::ops
