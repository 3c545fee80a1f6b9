// Sequence encoders: `gru`, `lstm` and `transformer` read a token sequence.
// - Over a user's history (user_tower with a shared item tower): tokens are her latest
//   user_tower.max_len items in time order, embedded by the shared item tower (one item tower for
//   every branch); the encoder is causal (GRU4Rec / SASRec) and the user is the last state.
//   Training reads every position at once (forward_positions). The bidirectional transformer
//   (BERT4Rec, user_tower.bidirectional) reads the whole history at every position: a learned mask
//   token stands for the items to predict (Tower::cloze).
// - Over content (an item's bag, e.g. title tokens): own token table; gru/lstm optionally
//   bidirectional over packed variable-length sequences (final states, projected to tower.dim);
//   transformer with positional embeddings and a padding mask, mean-pooled over the tokens.
// Sequences are right-padded: with a causal encoder a padded tail never reaches a real position.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/utils/rnn.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "towers/attention.h"
#include "towers/gru_kernel.h"
#include "towers/tower.h"
#include "util/error.h"

namespace siamrec {

class SequenceTower : public Tower {
 public:
  explicit SequenceTower(const TowerSpec& s)
      : dim_(s.dim),
        max_len_(s.max_len),
        layers_(std::max<int64_t>(1, s.layers)),
        feats_(s.feats),
        items_(s.item_tower) {
    if (!items_) {  // content: item text (or, without text, the bag tokens)
      int64_t vocab = content_vocab(*feats_);
      if (vocab <= 0)
        throw ConfigError(fmt::format("{}.type '{}' reads item text, but the items have none", s.key, s.type));
      double std = s.init_std > 0 ? s.init_std : 1.0 / std::sqrt(static_cast<double>(s.dim));
      tokens_ = register_parameter("tokens", torch::randn({vocab, s.dim}) * std);
    }
  }
  int64_t dim() const override { return dim_; }
  bool sequential() const override { return items_ != nullptr; }
  std::vector<torch::Tensor> tables() override {
    return tokens_.defined() ? std::vector<torch::Tensor>{tokens_} : std::vector<torch::Tensor>{};
  }
  bool supports_bags() const override { return true; }

  torch::Tensor forward(const torch::Tensor& ids) override {
    torch::Tensor tok, off;
    gather_content_tokens(*feats_, ids, tok, off);
    return forward_bags(tok, off);
  }

  torch::Tensor forward_bags(const torch::Tensor& tokens, const torch::Tensor& offsets) override {
    auto tk = tokens.contiguous();
    auto of = offsets.contiguous();
    const int64_t* t = tk.data_ptr<int64_t>();
    const int64_t* o = of.data_ptr<int64_t>();
    const int64_t B = of.numel(), T = tk.numel();
    if (items_ && B > kChunk) return forward_bags_by_length(t, o, B, T);
    if (items_ && cloze()) return forward_cloze_bags(t, o, B, T);
    // Histories: the latest max_len items; text: the first max_len tokens; right-padded with token
    // 0. Empty bags get length 1 (token 0) and a zero output.
    PaddedBags pb = pad_bags(t, o, B, T, max_len_, 1, /*latest=*/items_);
    const int64_t L = pb.L;
    std::vector<int64_t>& len = pb.len;
    std::vector<float> empty(B, 1.0f);
    for (int64_t b = 0; b < B; ++b)
      if (len[b] == 0) len[b] = 1, empty[b] = 0.0f;
    auto S = torch::from_blob(pb.seq.data(), {B, L}, torch::kInt64).clone();
    auto N = torch::from_blob(len.data(), {B}, torch::kInt64).clone();
    if (items_) return last_states(encode_ids(S, N, true), N, empty);  // causal: the state after the last item
    return pool(embed(S), N) * torch::from_blob(empty.data(), {B, 1}, torch::kFloat32).clone();
  }

  // Many histories at once (scoring every user): ordered by length and encoded kChunk at a time,
  // each chunk padded to its own longest history, not the longest of all.
  static constexpr int64_t kChunk = 256;
  torch::Tensor forward_bags_by_length(const int64_t* t, const int64_t* o, int64_t B, int64_t T) {
    auto end = [&](int64_t b) { return b + 1 < B ? o[b + 1] : T; };
    std::vector<int64_t> idx(B);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) {
      return std::min(end(x) - o[x], max_len_) < std::min(end(y) - o[y], max_len_);
    });
    torch::Tensor out;
    for (int64_t c0 = 0; c0 < B; c0 += kChunk) {
      const int64_t n = std::min(B, c0 + kChunk) - c0;
      std::vector<int64_t> tok, off(n);
      for (int64_t r = 0; r < n; ++r) {
        const int64_t b = idx[c0 + r];
        off[r] = static_cast<int64_t>(tok.size());
        tok.insert(tok.end(), t + std::max(o[b], end(b) - max_len_), t + end(b));  // the latest max_len
      }
      auto part = forward_bags(torch::tensor(tok, torch::kInt64), torch::tensor(off, torch::kInt64));
      if (!out.defined()) out = torch::empty({B, part.size(1)}, part.options());
      out.index_copy_(0, torch::tensor(std::vector<int64_t>(idx.begin() + c0, idx.begin() + c0 + n), torch::kInt64),
                      part);
    }
    return out;
  }

  torch::Tensor forward_positions(const torch::Tensor& seq, const torch::Tensor& lengths) override {
    if (!items_) throw ConfigError("content sequence towers do not encode histories position by position");
    return encode_ids(seq, lengths, !cloze());
  }

 protected:
  // Cloze users: each history's latest max_len - 1 items and a mask token; the user is its state.
  // An empty history gives a zero vector, as in forward_bags.
  torch::Tensor forward_cloze_bags(const int64_t* t, const int64_t* o, int64_t B, int64_t T) {
    std::vector<int64_t> seq(static_cast<size_t>(B * max_len_), 0), len(B);
    std::vector<float> empty(B, 1.0f);
    int64_t L = 1;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t end = b + 1 < B ? o[b + 1] : T, n = std::min(end - o[b], max_len_ - 1);
      std::copy(t + end - n, t + end, seq.begin() + b * max_len_);
      seq[b * max_len_ + n] = kMaskItem;
      len[b] = n + 1, L = std::max(L, n + 1);
      if (n == 0) empty[b] = 0.0f;
    }
    auto S = torch::from_blob(seq.data(), {B, max_len_}, torch::kInt64).slice(1, 0, L).clone();
    auto N = torch::from_blob(len.data(), {B}, torch::kInt64).clone();
    return last_states(encode(embed(S), N, false), N, empty);
  }
  // Each row's state at its last position (lengths N), times empty (0: an empty history).
  static torch::Tensor last_states(const torch::Tensor& st, const torch::Tensor& N, std::vector<float>& empty) {
    const int64_t B = st.size(0);
    auto out = st.gather(1, (N - 1).view({B, 1, 1}).expand({B, 1, st.size(2)})).squeeze(1);
    return out * torch::from_blob(empty.data(), {B, 1}, torch::kFloat32).clone();
  }
  torch::Tensor embed(const torch::Tensor& S) {
    auto flat = S.reshape({-1});
    torch::Tensor e;
    if (mask_token_.defined()) {  // Cloze: kMaskItem positions read the learned mask token
      auto masked = flat.lt(0);
      e = items_->forward(flat.clamp_min(0));
      e = torch::where(masked.unsqueeze(1), mask_token_.unsqueeze(0).to(e.dtype()), e);
    } else {
      e = items_ ? items_->forward(flat) : torch::embedding(tokens_, flat);
    }
    return e.view({S.size(0), S.size(1), -1});
  }
  // x [B, L, d], lengths [B] -> states [B, L, dim]
  virtual torch::Tensor encode(const torch::Tensor& x, const torch::Tensor& lengths, bool causal) = 0;
  // The same from the token ids S [B, L] (a tower may read them without embedding them first).
  virtual torch::Tensor encode_ids(const torch::Tensor& S, const torch::Tensor& lengths, bool causal) {
    return encode(embed(S), lengths, causal);
  }
  // Content representation [B, dim].
  virtual torch::Tensor pool(const torch::Tensor& x, const torch::Tensor& lengths) = 0;

  int64_t dim_, max_len_, layers_;
  const EntityFeatures* feats_;
  Tower* items_;
  torch::Tensor tokens_;
  torch::Tensor mask_token_;  // BERT4Rec's [mask] (cloze towers only)
};

namespace {

// What a training forward pass keeps for the backward pass: states [L + 1, B, H] and the gates
// r, z, n, W_hn h + b_hn [4, L, B, H] (gru_kernel.h's GruSaved over them).
struct GruKept {
  torch::Tensor states, gates;
  explicit GruKept(const GruShape& s)
      : states(torch::empty({s.steps + 1, s.batch, s.hidden})), gates(torch::empty({4, s.steps, s.batch, s.hidden})) {}
  GruKept(torch::Tensor st, torch::Tensor g) : states(std::move(st)), gates(std::move(g)) {}
  GruSaved saved() const {
    const int64_t step = gates.numel() / 4;
    float* g = gates.data_ptr<float>();
    return GruSaved{states.data_ptr<float>(), g, g + step, g + 2 * step, g + 3 * step};
  }
};

// The kernel's shape of batch x steps inputs of width `in` into w_hh's hidden width; reset: empty,
// or uint8 [B, L] marking where packed sequences start (gru_kernel.h); h0: empty, or float [B, H]
// contiguous (the carried state of session-parallel mini-batches).
GruShape gru_shape(int64_t batch, int64_t steps, int64_t in, const torch::Tensor& w_hh, const torch::Tensor& reset,
                   const torch::Tensor& h0) {
  return GruShape{batch,
                  steps,
                  in,
                  w_hh.size(1),
                  reset.defined() && reset.numel() > 0 ? reset.data_ptr<uint8_t>() : nullptr,
                  h0.defined() && h0.numel() > 0 ? h0.data_ptr<float>() : nullptr};
}

// One GRU layer through towers/gru_kernel.cc, with its hand-written gradient.
struct OwnGru : public torch::autograd::Function<OwnGru> {
  // reset: empty, or uint8 [B, L] marking where packed sequences start (gru_kernel.h).
  static GruShape shape(const torch::Tensor& x, const torch::Tensor& w_hh, const torch::Tensor& reset,
                        const torch::Tensor& h0) {
    return gru_shape(x.size(0), x.size(1), x.size(2), w_hh, reset, h0);
  }
  static GruWeights weights(const torch::Tensor& w_ih, const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                            const torch::Tensor& b_hh) {
    return GruWeights{w_ih.data_ptr<float>(), w_hh.data_ptr<float>(), b_ih.data_ptr<float>(), b_hh.data_ptr<float>()};
  }
  // Inference: nothing kept, no graph.
  static torch::Tensor run(const torch::Tensor& x, const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                           const torch::Tensor& b_ih, const torch::Tensor& b_hh, const torch::Tensor& reset,
                           const torch::Tensor& h0) {
    auto xc = x.contiguous();
    auto s = shape(xc, w_hh, reset, h0);
    auto y = torch::empty({s.batch, s.steps, s.hidden});
    gru_forward(s, weights(w_ih, w_hh, b_ih, b_hh), xc.data_ptr<float>(), y.data_ptr<float>(), GruSaved{});
    return y;
  }
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor w_ih,
                               torch::Tensor w_hh, torch::Tensor b_ih, torch::Tensor b_hh, torch::Tensor reset,
                               torch::Tensor h0) {
    auto xc = x.contiguous();
    auto s = shape(xc, w_hh, reset, h0);
    GruKept kept(s);
    auto y = torch::empty({s.batch, s.steps, s.hidden});
    gru_forward(s, weights(w_ih, w_hh, b_ih, b_hh), xc.data_ptr<float>(), y.data_ptr<float>(), kept.saved());
    ctx->save_for_backward({xc, w_ih, w_hh, b_ih, b_hh, kept.states, kept.gates});
    ctx->saved_data["reset"] = reset;
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto v = ctx->get_saved_variables();
    const auto &x = v[0], &w_ih = v[1], &w_hh = v[2], &b_ih = v[3], &b_hh = v[4], &states = v[5], &gates = v[6];
    auto reset = ctx->saved_data["reset"].toTensor();
    auto s = shape(x, w_hh, reset, torch::Tensor());  // the backward pass reads h0 from states[0]
    auto dy = grads[0].contiguous();
    auto dx = torch::empty_like(x);
    auto dw_ih = torch::empty_like(w_ih), dw_hh = torch::empty_like(w_hh);
    auto db_ih = torch::empty_like(b_ih), db_hh = torch::empty_like(b_hh);
    gru_backward(s, weights(w_ih, w_hh, b_ih, b_hh), x.data_ptr<float>(), dy.data_ptr<float>(),
                 GruKept(states, gates).saved(),
                 GruGrads{dx.data_ptr<float>(), dw_ih.data_ptr<float>(), dw_hh.data_ptr<float>(),
                          db_ih.data_ptr<float>(), db_hh.data_ptr<float>()});
    return {dx, dw_ih, dw_hh, db_ih, db_hh, torch::Tensor(), torch::Tensor()};
  }
};

// The first GRU layer over rows of an item table (the id tower's, or gcn's propagated one): every
// position's input projection x W_ih^T is a row of P = table W_ih^T, so when the table has fewer
// rows than the batch has positions the projection is one [items, 3H] product and a gather, and
// its backward a scatter of the gates' gradient by item, S [items, 3H], then d table = S W_ih and
// dW_ih = S^T table: three products over the items instead of three over the positions (the same
// values up to float rounding; tested against OwnGru).
struct FoldedGru : public torch::autograd::Function<FoldedGru> {
  static torch::Tensor gates(const torch::Tensor& table, const torch::Tensor& ids, const torch::Tensor& w_ih) {
    return torch::mm(table, w_ih.t()).index_select(0, ids.reshape({-1}));  // [B L, 3H]
  }
  static GruShape shape(const torch::Tensor& ids, const torch::Tensor& table, const torch::Tensor& w_hh,
                        const torch::Tensor& reset, const torch::Tensor& h0) {
    return gru_shape(ids.size(0), ids.size(1), table.size(1), w_hh, reset, h0);
  }
  static torch::Tensor run(const torch::Tensor& table, const torch::Tensor& ids, const torch::Tensor& w_ih,
                           const torch::Tensor& w_hh, const torch::Tensor& b_ih, const torch::Tensor& b_hh,
                           const torch::Tensor& reset, const torch::Tensor& h0) {
    auto s = shape(ids, table, w_hh, reset, h0);
    auto gi = gates(table.to(torch::kFloat32), ids, w_ih).contiguous();
    auto y = torch::empty({s.batch, s.steps, s.hidden});
    gru_forward_gates(s, OwnGru::weights(w_ih, w_hh, b_ih, b_hh), gi.data_ptr<float>(), y.data_ptr<float>(),
                      GruSaved{});
    return y;
  }
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor table, torch::Tensor ids,
                               torch::Tensor w_ih, torch::Tensor w_hh, torch::Tensor b_ih, torch::Tensor b_hh,
                               torch::Tensor reset, torch::Tensor h0) {
    auto tc = table.to(torch::kFloat32).contiguous();
    auto s = shape(ids, tc, w_hh, reset, h0);
    auto gi = gates(tc, ids, w_ih).contiguous();
    GruKept kept(s);
    auto y = torch::empty({s.batch, s.steps, s.hidden});
    gru_forward_gates(s, OwnGru::weights(w_ih, w_hh, b_ih, b_hh), gi.data_ptr<float>(), y.data_ptr<float>(),
                      kept.saved());
    ctx->save_for_backward({tc, w_ih, w_hh, b_ih, b_hh, kept.states, kept.gates});
    ctx->saved_data["ids"] = ids;
    ctx->saved_data["reset"] = reset;
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto v = ctx->get_saved_variables();
    const auto &table = v[0], &w_ih = v[1], &w_hh = v[2], &b_ih = v[3], &b_hh = v[4], &states = v[5], &g4 = v[6];
    auto ids = ctx->saved_data["ids"].toTensor();
    auto reset = ctx->saved_data["reset"].toTensor();
    auto s = shape(ids, table, w_hh, reset, torch::empty({0}));
    auto dy = grads[0].contiguous();
    auto dgi = torch::empty({s.batch * s.steps, 3 * s.hidden});
    auto dw_hh = torch::empty_like(w_hh);
    auto db_ih = torch::empty_like(b_ih), db_hh = torch::empty_like(b_hh);
    gru_backward(s, OwnGru::weights(w_ih, w_hh, b_ih, b_hh), nullptr, dy.data_ptr<float>(), GruKept(states, g4).saved(),
                 GruGrads{nullptr, nullptr, dw_hh.data_ptr<float>(), db_ih.data_ptr<float>(), db_hh.data_ptr<float>(),
                          dgi.data_ptr<float>()});
    auto S = torch::zeros({table.size(0), 3 * s.hidden}).index_add_(0, ids.reshape({-1}), dgi);
    return {S.mm(w_ih), torch::Tensor(), S.t().mm(table), dw_hh, db_ih, db_hh, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

// GRU4Rec-style recurrent encoders.
template <class RNN, class Options>
class RnnTower : public SequenceTower {
 public:
  explicit RnnTower(const TowerSpec& s) : SequenceTower(s), bi_(s.bidirectional) {
    if (bi_ && items_)
      throw ConfigError(fmt::format(
          "{}.bidirectional: a user history is read causally (only content towers can be bidirectional)", s.key));
    rnn_ = register_module("rnn", RNN(Options(s.dim, s.dim)
                                          .num_layers(layers_)
                                          .batch_first(true)
                                          .bidirectional(bi_)
                                          .dropout(layers_ > 1 ? s.dropout : 0.0)));
    if (bi_) proj_ = register_module("proj", torch::nn::Linear(2 * s.dim, s.dim));
    own_ = own_kernel(s);
    fold_ = s.rnn_fold;
  }

 protected:
  torch::Tensor encode(const torch::Tensor& x, const torch::Tensor&, bool) override {
    if (own_) return own_encode(x, torch::empty({0}, torch::kUInt8));  // no packed rows, h0 = 0
    return std::get<0>(rnn_->forward(x));  // causal: right padding never reaches earlier states
  }
  // The GRU over a history through towers/gru_kernel.cc (user_tower.rnn_kernel own): the same
  // parameters (LibTorch's layout), layers and inter-layer dropout as rnn_->forward.
  bool own_kernel(const TowerSpec& s) const;
  // Packed rows (train.pack_windows): the own kernel restarts from h0 = 0 at each segment.
  bool packs_positions() const override { return own_; }
  torch::Tensor forward_packed(const torch::Tensor& seq, const std::vector<std::vector<int64_t>>& lengths) override {
    if (!own_) return Tower::forward_packed(seq, lengths);
    const int64_t R = seq.size(0), W = seq.size(1);
    check_packed("gru", R, W, lengths);
    auto reset = torch::zeros({R, W}, torch::kUInt8);
    uint8_t* rs = reset.data_ptr<uint8_t>();
    for (int64_t r = 0; r < R; ++r) {
      int64_t at = 0;
      for (int64_t n : lengths[r]) rs[r * W + at] = 1, at += n;
    }
    return own_encode_ids(seq, reset);
  }
  // Session-parallel mini-batches (train.session_parallel): each row continues from its carried
  // states (one [R, H] per layer; empty: zeros) unless reset at step 0; state receives each
  // layer's state after the last step, detached (the gradient stops at the mini-batch's start).
  bool streams() const override { return own_; }
  torch::Tensor forward_stream(const torch::Tensor& seq, const torch::Tensor& reset,
                               std::vector<torch::Tensor>& state) override {
    if (!own_) return Tower::forward_stream(seq, reset, state);
    const int64_t R = seq.size(0), K = seq.size(1);
    if (reset.sizes() != seq.sizes() || reset.scalar_type() != torch::kUInt8)
      throw Error(fmt::format("gru: session-parallel reset flags must be uint8 [{}, {}]", R, K));
    if (!state.empty() && (static_cast<int64_t>(state.size()) != layers_ || state[0].size(0) != R))
      throw Error(fmt::format("gru: {} carried states for {} layers and {} rows", state.size(), layers_, R));
    return own_encode_ids(seq, reset.contiguous(), &state);
  }
  torch::Tensor encode_ids(const torch::Tensor& S, const torch::Tensor& lengths, bool causal) override {
    if (own_) return own_encode_ids(S, torch::empty({0}, torch::kUInt8));  // no packed rows, h0 = 0
    return SequenceTower::encode_ids(S, lengths, causal);
  }
  // The own kernel from item ids: the first layer folded into the item table (FoldedGru) when
  // the item tower gathers table rows and has fewer of them than the batch has positions.
  torch::Tensor own_encode_ids(const torch::Tensor& seq, const torch::Tensor& reset,
                               std::vector<torch::Tensor>* state = nullptr) {
    torch::Tensor table = items_ ? items_->gather_table() : torch::Tensor();
    if (fold_ && table.defined() && table.size(0) < seq.numel()) return own_encode({}, reset, state, &table, &seq);
    return own_encode(embed(seq), reset, state);
  }
  // x [B, L, d]; or, with table and ids, the first layer reads table rows (FoldedGru).
  torch::Tensor own_encode(const torch::Tensor& x, const torch::Tensor& reset,
                           std::vector<torch::Tensor>* state = nullptr, const torch::Tensor* table = nullptr,
                           const torch::Tensor* ids = nullptr) {
    auto w = rnn_->all_weights();  // per layer: w_ih, w_hh, b_ih, b_hh
    torch::Tensor h = table ? torch::Tensor() : x.to(torch::kFloat32);
    const bool grad = torch::GradMode::is_enabled();
    const double dropout = rnn_->options.dropout();  // between layers, as rnn_->forward
    std::vector<torch::Tensor> last;
    for (int64_t k = 0; k < layers_; ++k) {
      const auto &w_ih = w[4 * k], &w_hh = w[4 * k + 1], &b_ih = w[4 * k + 2], &b_hh = w[4 * k + 3];
      if (k > 0 && dropout > 0 && is_training())
        h = torch::nn::functional::dropout(h, torch::nn::functional::DropoutFuncOptions().p(dropout).training(true));
      torch::Tensor h0 = torch::empty({0});  // none (autograd functions take defined tensors)
      if (state && !state->empty()) h0 = (*state)[k].detach().to(torch::kFloat32).contiguous();
      if (k == 0 && table)
        h = grad ? FoldedGru::apply(*table, *ids, w_ih, w_hh, b_ih, b_hh, reset, h0)
                 : FoldedGru::run(*table, *ids, w_ih, w_hh, b_ih, b_hh, reset, h0);
      else
        h = grad ? OwnGru::apply(h, w_ih, w_hh, b_ih, b_hh, reset, h0)
                 : OwnGru::run(h, w_ih, w_hh, b_ih, b_hh, reset, h0);
      if (state) last.push_back(h.select(1, h.size(1) - 1).detach().clone());
    }
    if (state) *state = std::move(last);
    return h;
  }
  torch::Tensor pool(const torch::Tensor& x, const torch::Tensor& lengths) override {
    namespace R = torch::nn::utils::rnn;
    auto packed = R::pack_padded_sequence(x, lengths, /*batch_first=*/true, /*enforce_sorted=*/false);
    auto h = final_hidden(packed);  // [layers * dirs, B, d]
    if (!bi_) return h[h.size(0) - 1];
    return proj_->forward(torch::cat({h[h.size(0) - 2], h[h.size(0) - 1]}, 1));
  }
  torch::Tensor final_hidden(const torch::nn::utils::rnn::PackedSequence& p);

  bool bi_, own_ = false, fold_ = true;
  RNN rnn_{nullptr};
  torch::nn::Linear proj_{nullptr};
};

template <>
bool RnnTower<torch::nn::GRU, torch::nn::GRUOptions>::own_kernel(const TowerSpec& s) const {
  return items_ && !bi_ && s.rnn_kernel == "own";
}
template <>
bool RnnTower<torch::nn::LSTM, torch::nn::LSTMOptions>::own_kernel(const TowerSpec&) const {
  return false;
}
template <>
torch::Tensor RnnTower<torch::nn::GRU, torch::nn::GRUOptions>::final_hidden(
    const torch::nn::utils::rnn::PackedSequence& p) {
  return std::get<1>(rnn_->forward_with_packed_input(p));
}
template <>
torch::Tensor RnnTower<torch::nn::LSTM, torch::nn::LSTMOptions>::final_hidden(
    const torch::nn::utils::rnn::PackedSequence& p) {
  return std::get<0>(std::get<1>(rnn_->forward_with_packed_input(p)));
}

using GruTower = RnnTower<torch::nn::GRU, torch::nn::GRUOptions>;
using LstmTower = RnnTower<torch::nn::LSTM, torch::nn::LSTMOptions>;

// SASRec self-attention encoder. LibTorch 1.13 attention is sequence-first, so blocks run on
// [L, B, d]. Over a history, user_tower.norm pre is the published model (pmixer's norm_first):
//   h = E[item] sqrt(d) + P[pos];  h = dropout(h)
//   per block: h = h + MHA(LN(h)) (dropout on the attention weights); h = h + FFN(LN(h)),
//              FFN(z) = dropout(W2 relu(dropout(W1 z)))
//   final LayerNorm.
// norm post (model files before format 6, and content towers): h = LN(h + dropout(MHA(h)));
// h = LN(h + dropout(W2 relu(W1 h))). Positions `latest` count back from the latest item, as
// SASRec's left padding does; sequences stay right-padded here (padding is masked as keys and
// never reaches a real position through the causal mask), so the result is left padding's.
class TransformerTower : public SequenceTower {
 public:
  explicit TransformerTower(const TowerSpec& s)
      : SequenceTower(s),
        dropout_(s.dropout),
        pre_(items_ && s.norm == "pre"),
        latest_(items_ && s.positions == "latest"),
        cloze_(items_ && s.bidirectional) {
    if (s.dim % s.heads != 0)
      throw ConfigError(fmt::format("{}.heads ({}) must divide tower.dim ({})", s.key, s.heads, s.dim));
    if (cloze_ && !pre_) throw ConfigError(fmt::format("{}.bidirectional (BERT4Rec) needs {}.norm pre", s.key, s.key));
    if (cloze_ && s.max_len < 2)
      throw ConfigError(
          fmt::format("{}.bidirectional (BERT4Rec) needs {}.max_len >= 2 (items and the mask)", s.key, s.key));
    if (cloze_)
      mask_token_ =
          register_parameter("mask_token", torch::randn({s.dim}) * (1.0 / std::sqrt(static_cast<double>(s.dim))));
    pos_ = register_parameter("positions",
                              torch::randn({s.max_len, s.dim}) * (1.0 / std::sqrt(static_cast<double>(s.dim))));
    for (int64_t k = 0; k < layers_; ++k) {
      auto n = std::to_string(k);
      attn_.push_back(register_module(
          "attn" + n,
          torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(s.dim, s.heads).dropout(s.dropout))));
      ff1_.push_back(register_module("ff1_" + n, torch::nn::Linear(s.dim, s.dim)));
      ff2_.push_back(register_module("ff2_" + n, torch::nn::Linear(s.dim, s.dim)));
      ln1_.push_back(register_module("ln1_" + n, torch::nn::LayerNorm(layer_norm(s.dim))));
      ln2_.push_back(register_module("ln2_" + n, torch::nn::LayerNorm(layer_norm(s.dim))));
    }
    if (pre_) last_ = register_module("ln_last", torch::nn::LayerNorm(layer_norm(s.dim)));
  }

 protected:
  // SASRec's LayerNorm epsilon is 1e-8 (pre); the post blocks keep LibTorch's 1e-5.
  torch::nn::LayerNormOptions layer_norm(int64_t d) const {
    return torch::nn::LayerNormOptions({d}).eps(pre_ ? 1e-8 : 1e-5);
  }
  torch::Tensor positions(int64_t L, const torch::Tensor& lengths) const {
    if (!latest_) return pos_.slice(0, 0, L).unsqueeze(0);  // [1, L, d]
    // Position of t in a history of n items: P - n + t (the latest item at P - 1); padding: 0.
    const int64_t P = pos_.size(0);
    auto t = torch::arange(L, torch::kInt64).unsqueeze(0);  // [1, L]
    auto idx = (t + (P - lengths).unsqueeze(1)).clamp(0, P - 1);
    return torch::embedding(pos_, idx);  // [B, L, d]
  }
  torch::Tensor encode(const torch::Tensor& x, const torch::Tensor& lengths, bool causal) override {
    const int64_t L = x.size(1);
    auto h = x * std::sqrt(static_cast<double>(dim_)) + positions(L, lengths);
    h = pre_ ? fast_dropout(h, dropout_, is_training()) : torch::dropout(h, dropout_, is_training());
    auto valid = torch::arange(L, torch::kInt64).unsqueeze(0) < lengths.unsqueeze(1);  // [B, L]
    auto keep = valid.transpose(0, 1).unsqueeze(2).to(h.dtype());                      // [L, B, 1]
    torch::Tensor attn_mask, pad_mask;
    // LibTorch 1.13's C++ attention adds attn_mask to the logits (a bool mask would add 0/1), so
    // the causal mask is float: -inf above the diagonal.
    if (causal) {
      attn_mask = torch::full({L, L}, -std::numeric_limits<float>::infinity()).triu(1);
    } else if (pre_) {  // bidirectional over histories: every real key; padding looks at itself
      auto ok = valid.unsqueeze(1).logical_or(torch::eye(L, torch::kBool).unsqueeze(0));  // [B, L, L]
      attn_mask = torch::zeros(ok.sizes()).masked_fill(ok.logical_not(), -std::numeric_limits<float>::infinity());
    } else {
      pad_mask = valid.logical_not();
    }
    return blocks(h.transpose(0, 1) * keep, keep, attn_mask, pad_mask).transpose(0, 1);
  }

 public:
  bool packs_positions() const override { return pre_; }
  bool cloze() const override { return cloze_; }
  // Segments packed into rows: each token's position counts within its own segment, and the
  // attention mask [R, W, W] is causal (cloze: full) within a segment and -inf across segments, so every
  // segment's states are those it has alone (padding tokens look only at themselves: no row of
  // the softmax is all -inf).
  torch::Tensor forward_packed(const torch::Tensor& seq, const std::vector<std::vector<int64_t>>& lengths) override {
    if (!pre_) return Tower::forward_packed(seq, lengths);
    const int64_t R = seq.size(0), W = seq.size(1), P = pos_.size(0);
    check_packed("transformer", R, W, lengths);
    std::vector<int64_t> pidx(static_cast<size_t>(R * W), 0);
    std::vector<float> keep(static_cast<size_t>(R * W), 0.0f);
    std::vector<float> mask(static_cast<size_t>(R * W * W), -std::numeric_limits<float>::infinity());
    for (int64_t r = 0; r < R; ++r) {
      int64_t c = 0;
      float* m = mask.data() + r * W * W;
      for (int64_t n : lengths[r]) {
        for (int64_t t = 0; t < n; ++t) {
          pidx[r * W + c + t] = std::clamp(latest_ ? P - n + t : t, int64_t{0}, P - 1);
          keep[r * W + c + t] = 1.0f;
          std::fill(m + (c + t) * W + c, m + (c + t) * W + c + (cloze_ ? n : t + 1), 0.0f);
        }
        c += n;
      }
      for (int64_t i = c; i < W; ++i) m[i * W + i] = 0.0f;
    }
    auto pos = torch::embedding(pos_, torch::from_blob(pidx.data(), {R, W}, torch::kInt64).clone());
    auto h = fast_dropout(embed(seq) * std::sqrt(static_cast<double>(dim_)) + pos, dropout_, is_training());
    auto k = torch::from_blob(keep.data(), {R, W}, torch::kFloat32).t().unsqueeze(2).clone();  // [W, R, 1]
    auto am = torch::from_blob(mask.data(), {R, W, W}, torch::kFloat32).clone();
    return blocks(h.transpose(0, 1) * k, k, am, {}).transpose(0, 1);
  }

 protected:
  // The blocks over h [L, B, d] (padding rows zeroed by keep [L, B, 1]); attn_mask [L, L] or
  // [B, L, L] (pre-LN only), pad_mask [B, L] (post-LN content towers).
  torch::Tensor blocks(torch::Tensor h, const torch::Tensor& keep, const torch::Tensor& attn_mask,
                       const torch::Tensor& pad_mask) {
    const bool tr = is_training();
    for (size_t k = 0; k < attn_.size(); ++k) {
      if (pre_) {  // (pre_ is only ever set over histories: causal, or cloze)
        h = h + self_attention(attn_[k], ln1_[k]->forward(h), attn_mask, dropout_, tr);
        auto z = ln2_[k]->forward(h);
        auto f = ff2_[k]->forward(fast_dropout(torch::relu(ff1_[k]->forward(z)), dropout_, tr));
        h = (h + fast_dropout(f, dropout_, tr)) * keep;
      } else {
        auto a = std::get<0>(attn_[k]->forward(h, h, h, pad_mask, /*need_weights=*/false, attn_mask));
        h = ln1_[k]->forward(h + torch::dropout(a, dropout_, tr));
        auto f = ff2_[k]->forward(torch::relu(ff1_[k]->forward(h)));
        h = ln2_[k]->forward(h + torch::dropout(f, dropout_, tr));
      }
    }
    return pre_ ? last_->forward(h) : h;
  }
  torch::Tensor pool(const torch::Tensor& x, const torch::Tensor& lengths) override {
    auto st = encode(x, lengths, false);
    auto valid = (torch::arange(x.size(1), torch::kInt64).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kFloat32);
    return (st * valid.unsqueeze(2)).sum(1) / lengths.to(torch::kFloat32).unsqueeze(1);
  }

  double dropout_;
  bool pre_, latest_, cloze_;
  torch::Tensor pos_;
  std::vector<torch::nn::MultiheadAttention> attn_;
  std::vector<torch::nn::Linear> ff1_, ff2_;
  std::vector<torch::nn::LayerNorm> ln1_, ln2_;
  torch::nn::LayerNorm last_{nullptr};
};

SIAMREC_REGISTER_TOWER(
    "gru", "GRU over a token sequence: a user's history through the shared item tower (GRU4Rec) or content tokens",
    GruTower);
SIAMREC_REGISTER_TOWER("lstm",
                       "LSTM over a token sequence: a user's history through the shared item tower or content tokens",
                       LstmTower);
SIAMREC_REGISTER_TOWER("transformer",
                       "self-attention encoder with positional embeddings: causal over a user's history (SASRec), "
                       "bidirectional with Cloze "
                       "training (BERT4Rec, user_tower.bidirectional), or over content tokens",
                       TransformerTower);

}  // namespace siamrec
