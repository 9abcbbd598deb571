// A gate's own configuration keys ([dselect] k = 2 in the INI file, or --dselect.k 2): declared
// by the gate beside its code, added to the options table by the config parser from the gate
// registry, checked there against their declared ranges, and read back typed by the gate.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace mt {

using GateValue = std::variant<int64_t, double, std::string>;

struct GateKey {
  std::string name;  // "section.key"
  GateValue value;   // the default; its type is the key's
  std::string help;
  double least = -std::numeric_limits<double>::infinity();  // numbers: value >= least
  double above = -std::numeric_limits<double>::infinity();  // numbers: value > above
  std::vector<std::string> words = {};                      // strings: the allowed values
};

// The values given to the gates' keys, by name; a key given no value reads as its default.
class GateKeys {
 public:
  // Where the parser stores `k`'s value, holding its default until then.
  GateValue& slot(const GateKey& k);
  void set(const std::string& name, GateValue v);
  // An error naming the key when its value is outside what `k` allows.
  void check(const GateKey& k) const;
  int64_t integer(const GateKey& k) const;
  double number(const GateKey& k) const;
  const std::string& word(const GateKey& k) const;

 private:
  // k's value, or its default; an error when a value of another type was set.
  const GateValue& get(const GateKey& k) const;
  std::map<std::string, GateValue> values_;
};

}  // namespace mt
