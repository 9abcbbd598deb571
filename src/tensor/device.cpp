// Device names and build capabilities.
#include "tensor/device.hpp"

#include "tensor/error.hpp"
#ifdef MOETRAIN_CUDA
#include "tensor/cuda/runtime.hpp"
#endif

namespace mt {

namespace {
// True when moetrain was configured with -DMOETRAIN_CUDA=ON.
bool cuda_built() {
#ifdef MOETRAIN_CUDA
  return true;
#else
  return false;
#endif
}
}  // namespace

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  MT_CHECK(name == "cuda", "--device '{}' (cpu or cuda)", name);
  MT_CHECK(cuda_built(),
           "--device cuda: this moetrain was built without the CUDA backend (configure with "
           "-DMOETRAIN_CUDA=ON where nvcc is installed)");
  return Device::CUDA;
}

void wait_for(Device d) {
#ifdef MOETRAIN_CUDA
  if (d == Device::CUDA) cuda::synchronize();
#else
  (void)d;
#endif
}

const char* device_name(Device d) {
  return d == Device::CUDA ? "cuda" : "cpu";
}

}  // namespace mt
