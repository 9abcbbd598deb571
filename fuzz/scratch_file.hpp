// What the fuzz targets share: the input written to a scratch file (moetrain reads files by path),
// and the rule that bad input ends in mt::Error, a clear message; any other end is a finding.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "tensor/error.hpp"

namespace mt::fuzz {

// A file under /dev/shm of this process, overwritten with each input.
inline const std::string& write_scratch(const char* kind, const uint8_t* data, size_t size) {
  static const std::string path =
      "/dev/shm/moetrain-fuzz-" + std::to_string(::getpid()) + "-" + kind;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return path;
}

// Runs `read`; mt::Error is the expected outcome of bad input. Other exceptions escape, and
// libFuzzer reports them (an uncaught exception aborts).
template <typename F>
void expect_clear_errors(F&& read) {
  try {
    read();
  } catch (const Error&) {
  }
}

}  // namespace mt::fuzz
