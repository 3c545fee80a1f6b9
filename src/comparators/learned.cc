// learned: an MLP over [a, b, |a-b|, a*b] gives the similarity (not a metric).
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include "comparators/comparator.h"

namespace siamrec {

class LearnedComparator : public Comparator {
 public:
  explicit LearnedComparator(const ComparatorSpec& s) {
    int64_t in = 4 * s.dim;
    std::vector<int64_t> hidden = s.hidden.empty() ? std::vector<int64_t>{s.dim} : s.hidden;
    for (auto h : hidden) {
      net_->push_back(torch::nn::Linear(in, h));
      net_->push_back(torch::nn::ReLU());
      in = h;
    }
    net_->push_back(torch::nn::Linear(in, 1));
    register_module("net", net_);
  }
  torch::Tensor similarity(const torch::Tensor& a0, const torch::Tensor& b0) override {
    auto shape = a0.sizes().vec();
    auto bs = b0.sizes().vec();
    for (size_t k = 0; k < shape.size(); ++k) shape[k] = std::max(shape[k], bs[k]);
    auto a = a0.expand(shape), b = b0.expand(shape);
    auto x = torch::cat({a, b, (a - b).abs(), a * b}, -1);
    return net_->forward(x).squeeze(-1);
  }

 private:
  torch::nn::Sequential net_;
};

SIAMREC_REGISTER_COMPARATOR("learned", "MLP over [a, b, |a-b|, a*b] (comparator.hidden)", LearnedComparator);

}  // namespace siamrec
