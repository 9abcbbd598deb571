// The CUDA side of the op set: launchers on raw device pointers, each queued on the rank's
// stream (runtime.hpp). The shape checks live in the ops (tensor/ops/*.cpp), which call these for
// tensors on Device::CUDA. Reductions that return a value copy their per-row or per-block parts
// to the host and sum them there in a fixed order, so results are deterministic.
#pragma once
#include <cstdint>

namespace mt::cuda {

// Row-major batched GEMM: C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch, matrix i of each
// operand at pointer + i * stride, with leading dimensions lda, ldb, ldc (row lengths).
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta,
          float* c, int64_t ldc, int64_t stride_c, int64_t batch);

void fill(float* p, int64_t n, float v);
void add(const float* a, const float* b, float* out, int64_t n);
void mul(const float* a, const float* b, float* out, int64_t n);
void add_rows(float* y, const float* bias, int64_t rows, int64_t cols);
void sum_rows_accumulate(const float* dy, float* db, int64_t rows, int64_t cols);
double sum_squares(const float* p, int64_t n);
// y [rows, cols] += bias, then act = GELU(y); and its backward: d *= GELU'(x) in place, db += the
// column sums of d (the gradient kernel, then the column sums).
void bias_gelu(float* y, const float* bias, float* act, int64_t rows, int64_t cols);
void gelu_backward_bias(const float* x, float* d, float* db, int64_t rows, int64_t cols);
// c1, c2: the bias corrections 1 - beta^step; each gradient is read times grad_scale.
void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, float c1, float c2,
                  float grad_scale);

void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t cols);
void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean,
                        const float* rstd, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols);

// mask, dropped: attention-probability dropout (nullptr: none), as in ops::attention_forward.
void attention_forward(const float* qkv, float* out, float* probs, const float* mask,
                       float* dropped, int64_t B, int64_t T, int64_t H, int64_t hd);
void attention_backward(const float* dout, const float* qkv, const float* probs, const float* mask,
                        const float* dropped, float* dqkv, float* scratch, int64_t B, int64_t T,
                        int64_t H, int64_t hd);

// Token ids must lie in [0, V) (the caller checks them on the host).
void embedding_forward(const int32_t* tokens, const float* wte, const float* wpe, float* out,
                       int64_t n, int64_t T, int64_t d);
void embedding_backward(const int32_t* tokens, const float* dout, float* dwte, float* dwpe,
                        int64_t n, int64_t T, int64_t d);

void gather_rows(const float* src, const int32_t* index, float* out, int64_t n, int64_t d);
// weight may be null (weight 1).
void combine_rows(const float* src, const int32_t* slot, const float* weight, float* out, int64_t T,
                  int k, int64_t d);
void combine_rows_backward(const float* dy, const float* src, const int32_t* slot,
                           const float* weight, float* dsrc, float* dweight, int64_t T, int k,
                           int64_t d);

double cross_entropy(const float* logits, const int32_t* targets, float* dlogits, float* losses,
                     int64_t n, int64_t V, float grad_scale, float smoothing, int64_t* count);
double symmetric_kl(const float* z1, const float* z2, const int32_t* targets, float* dz1,
                    float* dz2, float* row_values, int64_t n, int64_t V, float grad_scale);

}  // namespace mt::cuda
