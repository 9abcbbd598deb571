// MT_ON_CUDA(t, launcher(args...)): when tensor t lives on the GPU, runs the launcher of
// tensor/cuda/kernels.hpp and returns its value from the calling op. Each op checks its shapes
// first, so both devices share one contract. In a build without CUDA a GPU tensor is an error.
#pragma once
#include "tensor/error.hpp"
#include "tensor/tensor.hpp"

#ifdef MOETRAIN_CUDA
#include "tensor/cuda/kernels.hpp"
#define MT_ON_CUDA(t, ...) \
  if ((t).device == ::mt::Device::CUDA) return ::mt::cuda::__VA_ARGS__
#else
#define MT_ON_CUDA(t, ...) \
  MT_CHECK((t).device == ::mt::Device::CPU, "a CUDA tensor in a build without CUDA")
#endif
