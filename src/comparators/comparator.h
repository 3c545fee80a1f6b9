// A comparator turns two embeddings into a similarity (higher = more alike). Metric comparators
// also give a distance (lower = closer), which distance-based losses (contrastive, triplet) use.
// All methods work over the last dimension with broadcasting: a [..., d], b [..., d] -> [...].
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "scoring/topk.h"
#include "util/names.h"
#include "util/registry.h"

namespace siamrec {

struct ComparatorSpec {
  std::string type;
  int64_t dim = 64;
  std::vector<int64_t> hidden;  // learned comparator
};

class Comparator : public torch::nn::Module {
 public:
  virtual torch::Tensor similarity(const torch::Tensor& a, const torch::Tensor& b) = 0;
  virtual bool is_metric() const { return false; }
  // Distance for metric comparators; -similarity otherwise.
  virtual torch::Tensor distance(const torch::Tensor& a, const torch::Tensor& b) { return -similarity(a, b); }
  // All pairs: a [B, d], b [N, d] -> [B, N] (overridden with GEMM forms where they exist).
  virtual torch::Tensor similarity_matrix(const torch::Tensor& a, const torch::Tensor& b) {
    return similarity(a.unsqueeze(1), b.unsqueeze(0));
  }
  virtual torch::Tensor distance_matrix(const torch::Tensor& a, const torch::Tensor& b) {
    return is_metric() ? distance(a.unsqueeze(1), b.unsqueeze(0)) : -similarity_matrix(a, b);
  }
  // Retrieval fast path: the GEMM form of this similarity, when one exists (cosine expects unit rows).
  virtual bool gemm(Similarity* kind) const { return false; }
};

using ComparatorFactory = std::function<std::shared_ptr<Comparator>(const ComparatorSpec&)>;
using ComparatorRegistry = Registry<ComparatorFactory>;
std::shared_ptr<Comparator> make_comparator(const ComparatorSpec& spec);

#define SIAMREC_REGISTER_COMPARATOR(NAME, HELP, CLS)                                          \
  static const bool siamrec_comparator_##CLS =                                                \
      ::siamrec::ComparatorRegistry::get().add(                                               \
          NAME, HELP,                                                                         \
          [](const ::siamrec::ComparatorSpec& s) {                                            \
            return std::static_pointer_cast<::siamrec::Comparator>(std::make_shared<CLS>(s)); \
          }) &&                                                                               \
      ::siamrec::register_name("comparator", NAME, HELP)

}  // namespace siamrec
