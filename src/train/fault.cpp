// Fault hook implementation.
#include "train/fault.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace mt {

void fault_hang_point(int rank, int64_t step) {
  static const char* spec = std::getenv("MOETRAIN_FAULT_HANG");
  int r = -1;
  long long s = -1;
  if (!spec || std::sscanf(spec, "%d:%lld", &r, &s) != 2 || r != rank || s != step) return;
  std::fprintf(stderr, "moetrain: rank %d: MOETRAIN_FAULT_HANG: hanging at step %lld\n", rank, s);
  std::fflush(stderr);
  for (;;) pause();
}

}  // namespace mt
