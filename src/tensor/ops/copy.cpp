// Copies between tensors on any devices (host memcpy, or through the CUDA runtime).
#include <cstring>

#include "tensor/error.hpp"
#include "tensor/ops.hpp"
#ifdef MOETRAIN_CUDA
#include "tensor/cuda/runtime.hpp"
#endif

namespace mt::ops {

void copy(const Tensor& src, const Tensor& dst) {
  MT_CHECK(src.bytes() == dst.bytes() && src.dtype == dst.dtype, "copy: {} {} into {} {}",
           src.shape.str(), dtype_name(src.dtype), dst.shape.str(), dtype_name(dst.dtype));
  if (src.device == Device::CPU && dst.device == Device::CPU) {
    if (src.bytes()) std::memmove(dst.data, src.data, src.bytes());
    return;
  }
#ifdef MOETRAIN_CUDA
  // Device-to-device copies stay queued on the stream; host memory must be ready on return.
  cuda::copy(dst.data, src.data, src.bytes(),
             src.device == Device::CPU || dst.device == Device::CPU);
#else
  fail("copy: a CUDA tensor in a build without CUDA");
#endif
}

}  // namespace mt::ops
