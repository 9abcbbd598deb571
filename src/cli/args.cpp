// Command-line flags that are not config keys (--resume, --device), taken out of the arguments.
#include "cli/commands.hpp"
#include "tensor/error.hpp"

namespace mt::cli {

std::string take_flag(Args& args, const std::string& name, const std::string& fallback) {
  std::string value = fallback;
  const std::string joined = name + "=";
  Args rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].starts_with(joined)) {  // --name=VALUE
      value = args[i].substr(joined.size());
    } else if (args[i] == name) {  // --name VALUE
      MT_CHECK(i + 1 < args.size(), "{} needs a value", name);
      value = args[++i];
    } else {
      rest.push_back(args[i]);
    }
  }
  args = std::move(rest);
  return value;
}

}  // namespace mt::cli
