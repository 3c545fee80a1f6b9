// Negative samplers. uniform and popularity draw items; in_batch uses the other positives of the
// batch; proxies compares anchors with learned label vectors (the trainer owns them); hard and
// semi_hard mine among sampler.candidates uniform draws with the current model.
#include <algorithm>
#include <cmath>

#include "config/config.h"
#include "sampling/builder.h"
#include "util/error.h"

namespace siamrec {

class UniformSampler : public NegativeSampler {
 public:
  void init(int32_t n, const std::vector<int64_t>&, const Config&) override { n_ = n; }
  int32_t map(uint64_t bits) const override {  // multiply-shift: uniform in [0, n) without a division
    return static_cast<int32_t>((static_cast<unsigned __int128>(bits) * static_cast<uint64_t>(n_)) >> 64);
  }
  int32_t uniform_range() const override { return n_; }
  std::string describe() const override { return "uniform"; }

 protected:
  int32_t n_ = 0;
};

class PopularitySampler : public NegativeSampler {
 public:
  void init(int32_t n, const std::vector<int64_t>& pop, const Config& c) override {
    alpha_ = c.real("sampler.alpha");
    cdf_.resize(n);
    double s = 0;
    for (int32_t i = 0; i < n; ++i) cdf_[i] = (s += std::pow(static_cast<double>(pop[i]), alpha_));
    if (s <= 0) throw Error("popularity sampling needs training interactions");
  }
  int32_t map(uint64_t bits) const override {
    double x = static_cast<double>(bits >> 11) * 0x1.0p-53 * cdf_.back();
    auto i = static_cast<int32_t>(std::upper_bound(cdf_.begin(), cdf_.end(), x) - cdf_.begin());
    return std::min<int32_t>(i, static_cast<int32_t>(cdf_.size()) - 1);
  }
  std::string describe() const override { return fmt::format("popularity^{:g}", alpha_); }

 private:
  std::vector<double> cdf_;
  double alpha_ = 0.75;
};

class InBatchSampler : public UniformSampler {
 public:
  Mining mining() const override { return Mining::InBatch; }
  std::string describe() const override { return "in-batch (other positives of the batch)"; }
};
class ProxiesSampler : public UniformSampler {
 public:
  Mining mining() const override { return Mining::Proxies; }
  std::string describe() const override { return "proxies (one learned vector per label)"; }
};
class HardSampler : public UniformSampler {
 public:
  Mining mining() const override { return Mining::Hard; }
  std::string describe() const override { return "hard (closest of sampler.candidates uniform draws)"; }
};
class SemiHardSampler : public UniformSampler {
 public:
  Mining mining() const override { return Mining::SemiHard; }
  std::string describe() const override { return "semi-hard (farther than the positive, within the margin)"; }
};

SIAMREC_REGISTER_SAMPLER("uniform", "uniform over items", UniformSampler);
SIAMREC_REGISTER_SAMPLER("popularity", "proportional to popularity^sampler.alpha", PopularitySampler);
// Draws without mining: the fused engine draws through map() (the rest mine with the model).
static const bool siamrec_fused_samplers =
    register_name("fused:sampler", "uniform", "") && register_name("fused:sampler", "popularity", "");
SIAMREC_REGISTER_SAMPLER("in_batch", "the other positives of the batch", InBatchSampler);
SIAMREC_REGISTER_SAMPLER("proxies",
                         "no draws: one learned vector (proxy) per label; the anchor's label's proxy is the positive, "
                         "the other labels' proxies the negatives (ProxyNCA; sampler.builder label)",
                         ProxiesSampler);
SIAMREC_REGISTER_SAMPLER("hard", "the most similar of sampler.candidates uniform draws", HardSampler);
SIAMREC_REGISTER_SAMPLER("semi_hard", "semi-hard negatives among sampler.candidates uniform draws", SemiHardSampler);

}  // namespace siamrec
