// Tuple builders decide what is an anchor and what is a positive; negative samplers decide what is
// a negative. Known positives of an anchor are never drawn as its negatives.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "util/names.h"
#include "util/registry.h"

namespace siamrec {

class Config;

struct Positive {
  int32_t a, p;  // anchor (user or item) and positive item
  float y;       // rating (rating tasks) or 1
};

class TupleBuilder {
 public:
  virtual ~TupleBuilder() = default;
  virtual void build(const Dataset& ds, const Interactions& train, const Csr& train_by_user, const Config& c) = 0;
  virtual bool anchor_is_user() const = 0;
  // Is item j a known positive of anchor a?
  virtual bool is_positive(int32_t a, int32_t j) const = 0;
  // The same answer as a bitmap, bit a * stride + j, when the builder keeps one (the fused
  // engine tests it inline and prefetches its words); bits == nullptr otherwise.
  struct PositiveBits {
    const uint64_t* bits = nullptr;
    uint64_t stride = 0;
  };
  virtual PositiveBits positive_bits() const { return {}; }
  const std::vector<Positive>& positives() const { return pos_; }
  // Sequence builders: each user's training items in time order; a positive is then a window
  // (a = user, p = end of the window in her sequence, exclusive). nullptr for pair builders.
  virtual const Csr* sequences() const { return nullptr; }
  // Builders over labelled items (label): each item's labels and the number of labels, for
  // samplers that compare anchors with one learned vector per label (proxies); nullptr / 0 otherwise.
  virtual const std::vector<std::vector<int32_t>>* item_labels() const { return nullptr; }
  virtual int32_t n_labels() const { return 0; }
  // Items held out entirely (cold-start / test images): builders never use them, samplers never
  // draw them. Set before build(); mask indexed by item id.
  void set_heldout(const std::vector<char>* mask) { heldout_ = mask; }
  bool heldout(int32_t j) const { return heldout_ && !heldout_->empty() && (*heldout_)[j]; }
  virtual std::string describe() const = 0;

 protected:
  std::vector<Positive> pos_;
  const std::vector<char>* heldout_ = nullptr;
};

using BuilderFactory = std::function<std::unique_ptr<TupleBuilder>()>;
using BuilderRegistry = Registry<BuilderFactory>;
std::unique_ptr<TupleBuilder> make_builder(const std::string& name);

// How a sampler's draws become the loss's negatives.
enum class Mining {
  None,      // each draw is a negative (uniform, popularity)
  InBatch,   // no draws: the other positives of the batch are the negatives
  Hard,      // sampler.candidates draws per anchor; the k most similar to the anchor are kept
  SemiHard,  // the same; farther than the positive but within the margin first (FaceNet)
  Proxies,   // no draws: one learned vector per label; the anchor's label's is the positive, the
             // other labels' are the negatives (ProxyNCA, normalized softmax; label builders)
};

// Draws candidate negative items; the trainer rejects known positives and, for hard/semi_hard,
// picks among sampler.candidates draws by the current model's scores.
class NegativeSampler {
 public:
  virtual ~NegativeSampler() = default;
  virtual void init(int32_t n_items, const std::vector<int64_t>& item_pop, const Config& c) = 0;
  // Maps 64 uniformly random bits to an item (the hot path of the fused engine).
  virtual int32_t map(uint64_t bits) const = 0;
  // n when map() is uniform over [0, n) by multiply-shift (the fused engine then inlines it), else 0.
  virtual int32_t uniform_range() const { return 0; }
  int32_t draw(std::mt19937_64& rng) const { return map(rng()); }
  virtual Mining mining() const { return Mining::None; }
  bool in_batch() const { return mining() == Mining::InBatch; }
  bool proxies() const { return mining() == Mining::Proxies; }
  bool mines_candidates() const { return mining() == Mining::Hard || mining() == Mining::SemiHard; }
  // Items drawn per anchor for k negatives: sampler.candidates when mining, none in-batch, else k.
  int draws(int k, int candidates) const { return in_batch() || proxies() ? 0 : mines_candidates() ? candidates : k; }
  virtual std::string describe() const = 0;
};

using SamplerFactory = std::function<std::unique_ptr<NegativeSampler>()>;
using SamplerRegistry = Registry<SamplerFactory>;
std::unique_ptr<NegativeSampler> make_sampler(const std::string& name);

#define SIAMREC_REGISTER_BUILDER(NAME, HELP, CLS)                                                  \
  static const bool siamrec_builder_##CLS = ::siamrec::BuilderRegistry::get().add(NAME, HELP, [] { \
    return std::unique_ptr<::siamrec::TupleBuilder>(std::make_unique<CLS>());                      \
  }) && ::siamrec::register_name("builder", NAME, HELP)
#define SIAMREC_REGISTER_SAMPLER(NAME, HELP, CLS)                                                  \
  static const bool siamrec_sampler_##CLS = ::siamrec::SamplerRegistry::get().add(NAME, HELP, [] { \
    return std::unique_ptr<::siamrec::NegativeSampler>(std::make_unique<CLS>());                   \
  }) && ::siamrec::register_name("sampler", NAME, HELP)

}  // namespace siamrec
