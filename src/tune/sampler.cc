#include "tune/sampler.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "util/error.h"
#include "util/rng.h"

namespace siamrec::tune {

namespace {

// A parameter in its sampling scale: log for loguniform and log ints.
bool logscale(const Param& p) { return p.kind == Param::Kind::LogUniform || (p.kind == Param::Kind::Int && p.log); }
double to_scale(const Param& p, double v) { return logscale(p) ? std::log(v) : v; }
double from_scale(const Param& p, double v) { return logscale(p) ? std::exp(v) : v; }

double draw_uniform(const Param& p, std::mt19937_64& rng) {
  const double lo = to_scale(p, p.kind == Param::Kind::Int ? p.lo - 0.49 : p.lo);
  const double hi = to_scale(p, p.kind == Param::Kind::Int ? p.hi + 0.49 : p.hi);
  std::uniform_real_distribution<double> u(lo, hi);
  double v = from_scale(p, u(rng));
  return std::clamp(v, p.lo, p.hi);
}

std::string draw_random(const Param& p, std::mt19937_64& rng) {
  if (p.kind == Param::Kind::Choice) return p.choices[rng() % p.choices.size()];
  return value_text(p, draw_uniform(p, rng));
}

class RandomSampler : public Sampler {
 public:
  Assignment suggest(const SearchSpace& s, const Config& base, const std::vector<Observation>&,
                     uint64_t seed) const override {
    std::mt19937_64 rng(mix64(seed));
    Assignment a;
    for (auto& p : s.params) {
      std::string v = draw_random(p, rng);  // drawn for every key: a key's draw does not depend on others
      if (SearchSpace::active(p, a, base)) a[p.key] = v;
    }
    return a;
  }
};

// A 1-D Parzen estimator over the parameter's scale: Gaussians at the observations plus a wide
// prior component, bandwidth = max(gap to the neighbours, range / min(100, n + 1)).
struct Parzen {
  std::vector<double> mu, sigma, weight;
  double lo = 0, hi = 1;
  Parzen(std::vector<double> xs, double lo_, double hi_) : lo(lo_), hi(hi_) {
    std::sort(xs.begin(), xs.end());
    const double range = hi - lo;
    const size_t n = xs.size();
    for (size_t k = 0; k < n; ++k) {
      const double left = k ? xs[k] - xs[k - 1] : xs[k] - lo;
      const double right = k + 1 < n ? xs[k + 1] - xs[k] : hi - xs[k];
      mu.push_back(xs[k]);
      sigma.push_back(std::clamp(std::max(left, right), range / std::min(100.0, n + 1.0), range));
      weight.push_back(1.0);
    }
    mu.push_back((lo + hi) / 2);  // the prior: one wide component
    sigma.push_back(range);
    weight.push_back(1.0);
    double w = 0;
    for (double x : weight) w += x;
    for (double& x : weight) x /= w;
  }
  double pdf(double x) const {
    double s = 0;
    for (size_t k = 0; k < mu.size(); ++k) {
      const double z = (x - mu[k]) / sigma[k];
      s += weight[k] * std::exp(-0.5 * z * z) / (sigma[k] * 2.5066282746310002);
    }
    return s;
  }
  double sample(std::mt19937_64& rng) const {
    std::discrete_distribution<size_t> pick(weight.begin(), weight.end());
    const size_t k = pick(rng);
    std::normal_distribution<double> g(mu[k], sigma[k]);
    for (int t = 0; t < 100; ++t) {  // truncated to the range
      const double x = g(rng);
      if (x >= lo && x <= hi) return x;
    }
    return std::clamp(mu[k], lo, hi);
  }
};

class TpeSampler : public Sampler {
 public:
  explicit TpeSampler(int startup) : startup_(startup) {}
  Assignment suggest(const SearchSpace& s, const Config& base, const std::vector<Observation>& done,
                     uint64_t seed) const override {
    if (static_cast<int>(done.size()) < startup_) return RandomSampler().suggest(s, base, done, seed);
    std::mt19937_64 rng(mix64(seed ^ 0x7e5ULL));
    // Best first (stable: ties keep trial order).
    std::vector<size_t> order(done.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return done[a].objective > done[b].objective; });
    Assignment a;
    for (auto& p : s.params) {
      if (!SearchSpace::active(p, a, base)) continue;
      // The trials where this key was set, split into good and bad.
      std::vector<const std::string*> vals;
      for (size_t k : order)
        if (auto it = done[k].params.find(p.key); it != done[k].params.end()) vals.push_back(&it->second);
      if (vals.size() < 2) {
        a[p.key] = draw_random(p, rng);
        continue;
      }
      const size_t n_good =
          std::min<size_t>(std::max<size_t>(1, static_cast<size_t>(std::ceil(0.1 * vals.size()))), 25);
      if (p.kind == Param::Kind::Choice) {
        std::vector<double> good(p.choices.size(), 1.0), bad(p.choices.size(), 1.0);  // +1 smoothing
        for (size_t k = 0; k < vals.size(); ++k) {
          auto c = std::find(p.choices.begin(), p.choices.end(), *vals[k]);
          if (c == p.choices.end()) continue;
          (k < n_good ? good : bad)[static_cast<size_t>(c - p.choices.begin())] += 1;
        }
        double gs = 0, bs = 0;
        for (double x : good) gs += x;
        for (double x : bad) bs += x;
        std::discrete_distribution<size_t> pick(good.begin(), good.end());
        size_t best = 0;
        double best_ratio = -1;
        for (int c = 0; c < 24; ++c) {
          const size_t k = pick(rng);
          const double r = (good[k] / gs) / (bad[k] / bs);
          if (r > best_ratio) best_ratio = r, best = k;
        }
        a[p.key] = p.choices[best];
        continue;
      }
      const double lo = to_scale(p, p.kind == Param::Kind::Int ? p.lo - 0.49 : p.lo);
      const double hi = to_scale(p, p.kind == Param::Kind::Int ? p.hi + 0.49 : p.hi);
      std::vector<double> g, b;
      for (size_t k = 0; k < vals.size(); ++k) {
        const double x = std::clamp(to_scale(p, std::stod(*vals[k])), lo, hi);
        (k < n_good ? g : b).push_back(x);
      }
      Parzen lg(g, lo, hi), lb(b, lo, hi);
      double best = lg.sample(rng), best_ratio = -1;
      for (int c = 0; c < 24; ++c) {
        const double x = lg.sample(rng);
        const double r = lg.pdf(x) / std::max(lb.pdf(x), 1e-300);
        if (r > best_ratio) best_ratio = r, best = x;
      }
      a[p.key] = value_text(p, std::clamp(from_scale(p, best), p.lo, p.hi));
    }
    return a;
  }

 private:
  int startup_;
};

}  // namespace

std::unique_ptr<Sampler> make_sampler(const std::string& name, int startup) {
  if (name == "random") return std::make_unique<RandomSampler>();
  if (name == "tpe") return std::make_unique<TpeSampler>(startup);
  throw ConfigError(fmt::format("tune.sampler '{}': expected random or tpe", name));
}

}  // namespace siamrec::tune
