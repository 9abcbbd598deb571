// Fuzz target: the configuration parser. The input is command-line words (whitespace separated)
// up to a line "%%", then the INI file that --config names; both go through parse_config as in
// `moetrain train`, and the INI text once more as a checkpoint's stored config.
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/scratch_file.hpp"
#include "io/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t cut = input.find("\n%%\n");
  const std::string words = input.substr(0, cut);
  const std::string ini = cut == std::string::npos ? std::string() : input.substr(cut + 4);
  std::vector<std::string> args;
  std::istringstream in(words);
  for (std::string w; in >> w;) args.push_back(w);
  const std::string& path = mt::fuzz::write_scratch(
      "config.ini", reinterpret_cast<const uint8_t*>(ini.data()), ini.size());
  args.insert(args.begin(), {"--config", path});
  mt::fuzz::expect_clear_errors([&] { mt::parse_config(args); });
  mt::fuzz::expect_clear_errors([&] { mt::parse_config({}, ini); });
  return 0;
}
