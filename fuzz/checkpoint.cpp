// Fuzz target: the checkpoint reader. The input is the file `--resume` and `eval` read:
// checkpoint_problem (format, checksums, finite values) as `--resume latest` asks it, then the
// step and the stored config.
#include "io/checkpoint.hpp"
#include "fuzz/scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = mt::fuzz::write_scratch("checkpoint.h5", data, size);
  (void)mt::checkpoint_problem(path);
  mt::fuzz::expect_clear_errors([&] {
    mt::checkpoint_step(path);
    mt::checkpoint_config(path);
  });
  return 0;
}
