// Command-line flags that are not config keys (--resume, --device, a command's own options),
// taken out of the arguments.
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

Args take_options(const Args& args, const boost::program_options::options_description& options,
                  boost::program_options::variables_map& vm, const std::string& command) {
  namespace po = boost::program_options;
  try {
    const auto parsed = po::command_line_parser(args).options(options).allow_unregistered().run();
    po::store(parsed, vm);
    po::notify(vm);
    return po::collect_unrecognized(parsed.options, po::include_positional);
  } catch (const po::error& e) {
    fail("{}: {}", command, e.what());
  }
}

}  // namespace mt::cli
