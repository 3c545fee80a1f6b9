// `gcn`: graph tower over the user-item interaction graph (LightGCN and GCN propagation).
// Entities (items, then users, in the joint space) own an ego embedding E0; K layers propagate it
// over the normalized adjacency A = D^-1/2 A D^-1/2:
//   lightgcn: E(k+1) = A E(k)                      gcn: E(k+1) = LeakyReLU(A E(k) W_k)
// and the output is the mean (or learned softmax-weighted sum) of E(0..K). Propagation runs once per
// training step: every branch of the step reads the same propagated table (the cache is keyed on
// the parameters' version counters, so an optimizer step or a weight load invalidates it).
#include <torch/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/functional/activation.h>

#include <algorithm>
#include <cmath>

#include "towers/spmm.h"
#include "towers/tower.h"
#include "util/error.h"

namespace siamrec {

namespace {

// y = A x with gradient A^T g = A g (A symmetric), through siamrec's CSR kernel.
// general: the kernel's general loop at every width (tower.spmm csr_general, for benchmarks).
struct CsrSpmm : public torch::autograd::Function<CsrSpmm> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t mat, bool general) {
    ctx->saved_data["mat"] = mat;
    ctx->saved_data["general"] = general;
    return apply_to(*reinterpret_cast<const Csr*>(mat), x, general);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    auto* m = reinterpret_cast<const Csr*>(ctx->saved_data["mat"].toInt());
    return {apply_to(*m, g[0], ctx->saved_data["general"].toBool()), torch::Tensor(), torch::Tensor()};
  }
  static torch::Tensor apply_to(const Csr& m, const torch::Tensor& x, bool general) {
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    (general ? spmm_general : spmm)(m, xc.data_ptr<float>(), xc.size(1), y.data_ptr<float>());
    return y;
  }
};

}  // namespace

class GcnTower : public Tower {
 public:
  explicit GcnTower(const TowerSpec& s)
      : dim_(s.dim),
        layers_(s.layers),
        combine_(s.layer_combine),
        variant_(s.propagation),
        use_torch_(s.spmm == "torch"),
        general_(s.spmm == "csr_general"),
        per_epoch_(s.propagate == "epoch") {
    if (per_epoch_ && variant_ == "gcn")
      throw ConfigError("tower.propagate 'epoch' needs tower.propagation lightgcn (gcn layers have weights to train)");
    const EntityFeatures& f = *s.feats;
    if (f.graph_ptr.empty())
      throw ConfigError(
          fmt::format("{}.type 'gcn' needs the user-item graph: use sampler.builder user_item with "
                      "model.shared true (users and items in one joint space)",
                      s.key));
    if (layers_ < 0) throw ConfigError("tower.layers must be >= 0");
    adj_ = normalized_adjacency(f.n, f.graph_ptr, f.graph_idx);
    deg_.resize(static_cast<size_t>(f.n));
    for (int64_t r = 0; r < f.n; ++r) deg_[r] = f.graph_ptr[r + 1] - f.graph_ptr[r];
    double std = s.init_std > 0 ? s.init_std : 1.0 / std::sqrt(static_cast<double>(s.dim));
    weight_ = register_parameter("weight", torch::randn({f.n, s.dim}) * std);
    if (combine_ == "weights") layer_w_ = register_parameter("layer_weights", torch::zeros({layers_ + 1}));
    if (variant_ == "gcn")
      for (int64_t k = 0; k < layers_; ++k)
        lin_.push_back(register_module("layer" + std::to_string(k), torch::nn::Linear(s.dim, s.dim)));
    if (use_torch_) {  // the same matrix as a LibTorch sparse COO tensor (benchmarks compare the two)
      std::vector<int64_t> rows;
      rows.reserve(adj_.indices.size());
      for (int64_t r = 0; r < adj_.rows(); ++r)
        for (int64_t p = adj_.indptr[r]; p < adj_.indptr[r + 1]; ++p) rows.push_back(r);
      auto ri = torch::tensor(rows, torch::kInt64);
      auto ci = torch::from_blob(adj_.indices.data(), {adj_.nnz()}, torch::kInt32).to(torch::kInt64);
      auto v = torch::from_blob(adj_.values.data(), {adj_.nnz()}, torch::kFloat32).clone();
      sparse_ = torch::sparse_coo_tensor(torch::stack({ri, ci}), v, {adj_.rows(), adj_.rows()}).coalesce();
    }
  }

  torch::Tensor forward(const torch::Tensor& ids) override {
    return propagated().index_select(0, ids.reshape({-1})).view({ids.numel(), dim_});
  }
  int64_t dim() const override { return dim_; }
  std::vector<torch::Tensor> tables() override { return {weight_}; }
  torch::Tensor gather_table() override { return propagated(); }  // this step's (cached) propagation
  bool supports_bags() const override { return true; }

  // Fold-in of an entity known by its neighbours only (a new user and her items): its layer-k
  // embedding is propagated from the neighbours' layer k-1 embeddings exactly as for a node of the
  // graph (normalized by its own and their degrees); its unknown ego embedding counts as zero.
  torch::Tensor forward_bags(const torch::Tensor& tokens, const torch::Tensor& offsets) override {
    torch::NoGradGuard ng;  // exact layers (also in propagate: epoch mode)
    propagated();
    auto tk = tokens.contiguous();
    auto of = offsets.contiguous();
    const int64_t* t = tk.data_ptr<int64_t>();
    const int64_t* o = of.data_ptr<int64_t>();
    int64_t nb = of.numel(), T = tk.numel();
    std::vector<torch::Tensor> per_layer{torch::zeros({nb, dim_})};
    for (int64_t k = 0; k < layers_; ++k) {
      auto agg = torch::zeros({nb, dim_});
      for (int64_t b = 0; b < nb; ++b) {
        int64_t lo = o[b], hi = b + 1 < nb ? o[b + 1] : T;
        // Her neighbours as in the graph: distinct, valid, connected nodes.
        std::vector<int64_t> nbr;
        for (int64_t p = lo; p < hi; ++p)
          if (t[p] >= 0 && t[p] < adj_.rows() && deg_[t[p]] > 0) nbr.push_back(t[p]);
        std::sort(nbr.begin(), nbr.end());
        nbr.erase(std::unique(nbr.begin(), nbr.end()), nbr.end());
        const double du = static_cast<double>(nbr.size());
        for (auto x : nbr)
          agg[b] += cache_layers_[k][x] * static_cast<float>(1.0 / std::sqrt(du * static_cast<double>(deg_[x])));
      }
      per_layer.push_back(transform(k, agg));
    }
    return combine(per_layer);
  }

 private:
  torch::Tensor transform(int64_t k, const torch::Tensor& agg) {
    if (variant_ != "gcn") return agg;
    return torch::leaky_relu(lin_[k]->forward(agg), 0.2);
  }
  torch::Tensor combine(const std::vector<torch::Tensor>& e) {
    if (combine_ == "weights") {
      auto w = torch::softmax(layer_w_, 0);
      auto out = e[0] * w[0];
      for (size_t k = 1; k < e.size(); ++k) out = out + e[k] * w[static_cast<int64_t>(k)];
      return out;
    }
    return torch::stack(e, 0).mean(0);
  }
  torch::Tensor propagate_once(const torch::Tensor& x) {
    if (use_torch_) return torch::mm(sparse_, x);
    return CsrSpmm::apply(x, reinterpret_cast<int64_t>(&adj_), general_);
  }
  void begin_epoch() override { stale_.clear(); }
  int64_t params_version() {
    int64_t v = 0;
    for (auto& p : parameters()) v += static_cast<int64_t>(p._version());
    return v;
  }
  torch::Tensor propagated() {
    const bool grad = torch::GradMode::is_enabled();
    const int64_t ver = params_version();
    if (cache_.defined() && ver == cache_ver_ && grad == cache_grad_) return cache_;
    // A no-grad read (mining, health checks) within a step reuses the step's exact propagation.
    if (!grad && cache_grad_ && !per_epoch_ && cache_.defined() && ver == cache_ver_) return cache_.detach();
    if (grad && per_epoch_) {  // neighbour layers fixed for the epoch; gradients reach E(0) only
      if (stale_.empty()) {
        torch::NoGradGuard ng;
        std::vector<torch::Tensor> e{weight_.detach()};
        for (int64_t k = 0; k < layers_; ++k) e.push_back(propagate_once(e.back()));
        stale_.assign(e.begin() + 1, e.end());
      }
      std::vector<torch::Tensor> e{weight_};
      for (auto& x : stale_) e.push_back(x);
      cache_ = combine(e);
      cache_ver_ = ver, cache_grad_ = grad;
      return cache_;
    }
    std::vector<torch::Tensor> e{weight_};
    for (int64_t k = 0; k < layers_; ++k) e.push_back(transform(k, propagate_once(e.back())));
    cache_layers_.clear();
    for (auto& x : e) cache_layers_.push_back(x.detach());
    cache_ = combine(e);
    cache_ver_ = ver, cache_grad_ = grad;
    return cache_;
  }

  int64_t dim_, layers_;
  std::string combine_, variant_;
  bool use_torch_, general_, per_epoch_;
  std::vector<torch::Tensor> stale_;  // propagate: epoch — E(1..K) of this epoch
  Csr adj_;
  std::vector<int64_t> deg_;
  torch::Tensor weight_, layer_w_, sparse_;
  std::vector<torch::nn::Linear> lin_;
  torch::Tensor cache_;
  std::vector<torch::Tensor> cache_layers_;
  int64_t cache_ver_ = -1;
  bool cache_grad_ = false;
};

SIAMREC_REGISTER_TOWER(
    "gcn", "graph tower: LightGCN/GCN propagation of entity embeddings over the user-item graph (joint space)",
    GcnTower);

}  // namespace siamrec
