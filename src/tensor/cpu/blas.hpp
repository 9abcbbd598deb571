// Internal to the CPU backend: OpenBLAS thread control for loops that call BLAS from OpenMP
// threads (each call must then run single-threaded).
#pragma once

namespace mt::cpu {

class SerialBlas {
 public:
  SerialBlas();
  ~SerialBlas();
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int saved_;
};

}  // namespace mt::cpu
