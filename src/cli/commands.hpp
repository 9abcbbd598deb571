// The moetrain subcommands; each takes the arguments after its name and returns an exit code.
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace mt::cli {

using Args = std::vector<std::string>;
int prepare(const Args& args);
int train(const Args& args);
int eval(const Args& args);
int bench(const Args& args);
int inspect(const Args& args);
int exits(const Args& args);
int generate(const Args& args);

// Removes every `name VALUE` pair and `name=VALUE` word from args and returns the last VALUE (a
// later flag overrides an earlier one, as with config keys), or fallback when there is none.
std::string take_flag(Args& args, const std::string& name, const std::string& fallback = "");

// Parses a command's own options out of args into vm and returns the rest (config keys and
// words, for parse_config). A bad option stops with "COMMAND: what Boost says".
Args take_options(const Args& args, const boost::program_options::options_description& options,
                  boost::program_options::variables_map& vm, const std::string& command);

}  // namespace mt::cli
