// JEI-DNN's per-IM patience in the warm-up (the authors' train_dynn.py; docs/methods.md §9.4):
// after each validation of the warm-up, an exit whose cross-entropy alone has not gone below its
// best for `patience` validations in a row gets its best head back and stops training (its
// AdamW skips it) until the warm-up ends. The best heads are a registry of their own
// ("best/<name>"), so that the exits' checkpoint holds them and a resume continues bitwise.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.hpp"
#include "model/exits.hpp"
#include "optim/adamw.hpp"

namespace mt {

class ExitPatience {
 public:
  // patience 0: off (every exit trains through the warm-up).
  ExitPatience(const ExitHeads& exits, ParamRegistry& heads, int64_t patience);
  // After a warm-up validation with each exit's cross-entropy alone: keeps each new best head,
  // and returns the exits it froze now (their best heads restored).
  std::vector<int> validated(const std::vector<double>& ce, AdamW& heads_opt);
  // The warm-up's end: every exit trains again, from the head it has.
  void release(AdamW& heads_opt);
  // The checkpoint's part (the best heads; its AdamW never steps) and /scheduler attributes.
  CheckpointPart part() const { return {best_, *best_opt_, "best_step"}; }
  std::map<std::string, double> state() const;
  // From such a checkpoint: the best heads and the counts, the frozen exits frozen again.
  void load(const std::string& path, AdamW& heads_opt);

 private:
  void set_frozen(int l, bool on, AdamW& heads_opt);
  const ExitHeads& exits_;
  ParamRegistry& heads_;
  int64_t patience_;
  ParamRegistry best_;
  std::optional<AdamW> best_opt_;  // made once best_ is allocated
  std::vector<double> best_ce_;
  std::vector<int64_t> stale_;  // validations since the best
  std::vector<uint8_t> frozen_;
};

}  // namespace mt
