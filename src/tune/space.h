// Search spaces of `siamrec tune`: config keys with a distribution, optionally conditional.
//
//   train.lr:          {loguniform: [0.0005, 0.05]}
//   loss.type:         {choice: [triplet, bpr]}
//   loss.margin:       {uniform: [0.1, 1.0], when: {loss.type: triplet}}
//   tower.dim:         {int: [16, 128], log: true}
//   sampler.negatives: {choice: [1, 5, 10]}
//
// Every key must be a config key; every value the distribution can give must be valid for it
// (checked against the parameter table when the space is read); ranges must not be empty.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace siamrec::tune {

struct Param {
  std::string key;
  enum class Kind { Choice, Uniform, LogUniform, Int } kind = Kind::Uniform;
  double lo = 0, hi = 1;
  bool log = false;                         // Int: sampled on a log scale
  std::vector<std::string> choices;         // Choice: the values (YAML scalars as text)
  std::map<std::string, std::string> when;  // active only when these keys have these values
  std::string describe() const;             // e.g. "loguniform [0.0005, 0.05]"
};

using Assignment = std::map<std::string, std::string>;  // key -> value text (as --set takes it)

struct SearchSpace {
  std::vector<Param> params;  // in file order
  // Reads and validates a space against `base` (the config being tuned); ConfigError naming the
  // key and the problem (unknown key, wrong type, empty range, unknown distribution).
  static SearchSpace from_yaml(const std::string& text, const std::string& source, const Config& base);
  // Is `p` active under the values decided so far (`a`, falling back to the base config)?
  static bool active(const Param& p, const Assignment& a, const Config& base);
};

// The value text of a numeric draw for a parameter (ints rounded, floats with 6 significant digits).
std::string value_text(const Param& p, double v);

}  // namespace siamrec::tune
