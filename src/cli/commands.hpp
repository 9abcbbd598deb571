// The moetrain subcommands; each takes the arguments after its name and returns an exit code.
#pragma once
#include <string>
#include <vector>

namespace mt::cli {

using Args = std::vector<std::string>;
int prepare(const Args& args);
int train(const Args& args);
int eval(const Args& args);
int bench(const Args& args);
int inspect(const Args& args);

}  // namespace mt::cli
