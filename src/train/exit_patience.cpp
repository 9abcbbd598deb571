// JEI-DNN's per-IM patience in the warm-up.
#include "train/exit_patience.hpp"

#include <fmt/format.h>

#include <limits>

#include "tensor/ops.hpp"

namespace mt {

ExitPatience::ExitPatience(const ExitHeads& exits, ParamRegistry& heads, int64_t patience)
    : exits_(exits),
      heads_(heads),
      patience_(patience),
      best_ce_(exits.count(), std::numeric_limits<double>::infinity()),
      stale_(exits.count(), 0),
      frozen_(exits.count(), 0) {
  for (size_t i = 0; i < heads.size(); ++i)
    best_.add("best/" + heads.info(int(i)).name, heads.info(int(i)).shape, Init::zeros());
  best_.allocate(heads.device());
  best_opt_.emplace(best_, AdamWConfig{});
}

void ExitPatience::set_frozen(int l, bool on, AdamW& heads_opt) {
  frozen_[l] = on;
  for (const int i : exits_.head_params(l)) heads_opt.freeze(i, on);
}

std::vector<int> ExitPatience::validated(const std::vector<double>& ce, AdamW& heads_opt) {
  std::vector<int> froze;
  if (patience_ <= 0) return froze;
  for (int l = 0; l < exits_.count(); ++l) {
    if (frozen_[l]) continue;
    const std::vector<int> params = exits_.head_params(l);
    if (ce[l] < best_ce_[l]) {
      best_ce_[l] = ce[l];
      stale_[l] = 0;
      for (const int i : params) ops::copy(heads_.value(i), best_.value(i));
    } else if (++stale_[l] >= patience_) {
      for (const int i : params) ops::copy(best_.value(i), heads_.value(i));
      set_frozen(l, true, heads_opt);
      froze.push_back(l);
    }
  }
  return froze;
}

void ExitPatience::release(AdamW& heads_opt) {
  for (int l = 0; l < exits_.count(); ++l) set_frozen(l, false, heads_opt);
}

std::map<std::string, double> ExitPatience::state() const {
  std::map<std::string, double> s;
  for (int l = 0; l < exits_.count(); ++l) {
    s[fmt::format("exit{}_best_ce", l)] = best_ce_[l];
    s[fmt::format("exit{}_stale", l)] = double(stale_[l]);
    s[fmt::format("exit{}_frozen", l)] = frozen_[l];
  }
  return s;
}

void ExitPatience::load(const std::string& path, AdamW& heads_opt) {
  load_model(path, best_);
  for (int l = 0; l < exits_.count(); ++l) {
    best_ce_[l] = checkpoint_value(path, fmt::format("exit{}_best_ce", l));
    stale_[l] = int64_t(checkpoint_value(path, fmt::format("exit{}_stale", l)));
    set_frozen(l, checkpoint_value(path, fmt::format("exit{}_frozen", l)) != 0, heads_opt);
  }
}

}  // namespace mt
