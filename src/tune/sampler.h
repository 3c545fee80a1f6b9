// Samplers of `siamrec tune` (tune.sampler): random search, and the tree-structured Parzen
// estimator (TPE; Bergstra et al. 2011, univariate as in Optuna's default): per parameter, the
// completed trials are split into the best gamma(n) = min(ceil(0.1 n), 25) and the rest, each
// side's values smoothed into a Parzen density (Gaussians in the parameter's own or log scale,
// bandwidths from neighbour gaps; smoothed counts for choices), and the draw is the one of 24
// candidates from the good density that maximises good / bad. The first tune.startup trials are
// random. Deterministic for a seed and a history.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "tune/space.h"

namespace siamrec::tune {

struct Observation {
  Assignment params;
  double objective = 0;  // higher is better
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  // A full assignment (inactive conditional keys left out) for the trial seeded by `seed`.
  virtual Assignment suggest(const SearchSpace& s, const Config& base, const std::vector<Observation>& done,
                             uint64_t seed) const = 0;
};

// "random" or "tpe"; ConfigError otherwise.
std::unique_ptr<Sampler> make_sampler(const std::string& name, int startup);

}  // namespace siamrec::tune
