// The gates' own configuration keys: defaults, range checks and typed reads.
#include "gates/gate_keys.hpp"

#include "tensor/error.hpp"

namespace mt {

GateValue& GateKeys::slot(const GateKey& k) {
  return values_.try_emplace(k.name, k.value).first->second;
}

void GateKeys::set(const std::string& name, GateValue v) {
  values_[name] = std::move(v);
}

const GateValue& GateKeys::get(const GateKey& k) const {
  const auto it = values_.find(k.name);
  if (it == values_.end()) return k.value;
  MT_CHECK(it->second.index() == k.value.index(), "gate key {}: a value of another type was set",
           k.name);
  return it->second;
}

void GateKeys::check(const GateKey& k) const {
  const GateValue& v = get(k);
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (k.words.empty()) return;
    std::string allowed;
    for (size_t i = 0; i < k.words.size(); ++i) {
      if (k.words[i] == *s) return;
      allowed += (i == 0 ? "" : i + 1 == k.words.size() ? " or " : ", ") + k.words[i];
    }
    fail("config: {} = '{}' ({})", k.name, *s, allowed);
  }
  const double x =
      std::holds_alternative<int64_t>(v) ? double(std::get<int64_t>(v)) : std::get<double>(v);
  MT_CHECK(x >= k.least, "config: {} = {} (at least {})", k.name, x, k.least);
  MT_CHECK(x > k.above, "config: {} = {} (must be > {})", k.name, x, k.above);
}

int64_t GateKeys::integer(const GateKey& k) const {
  return std::get<int64_t>(get(k));
}
double GateKeys::number(const GateKey& k) const {
  return std::get<double>(get(k));
}
const std::string& GateKeys::word(const GateKey& k) const {
  return std::get<std::string>(get(k));
}

}  // namespace mt
