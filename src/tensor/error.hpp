// One exception type for every user-facing failure: the message names the file, key or rank.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <utility>

namespace mt {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... A>
[[noreturn]] void fail(fmt::format_string<A...> f, A&&... args) {
  throw Error(fmt::format(f, std::forward<A>(args)...));
}

}  // namespace mt

// MT_CHECK(cond, "format {}", args...) throws mt::Error with the formatted message.
#define MT_CHECK(cond, ...)               \
  do {                                    \
    if (!(cond)) ::mt::fail(__VA_ARGS__); \
  } while (0)
