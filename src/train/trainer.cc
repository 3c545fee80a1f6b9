#include "train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/autograd.h>
#include <torch/serialize.h>
#include <torch/utils.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "comparators/gathered.h"
#include "config/config.h"
#include "data/dataset.h"
#include "dist/group.h"
#include "sampling/session_parallel.h"
#include "util/rng.h"
#include "util/error.h"
#include "util/io.h"

namespace siamrec {

using Clock = std::chrono::steady_clock;
static const char kCkptMagic[8] = {'S', 'R', 'C', 'K', 'P', 'T', '\0', '\1'};

Trainer::Trainer(SiameseNet& net, const Config& c, TupleBuilder& b, NegativeSampler& s, Loss& l,
                 std::function<double()> validate)
    : net_(net), cfg_(c), builder_(b), sampler_(s), loss_(l), validate_(std::move(validate)) {
  k_ = static_cast<int>(c.integer("sampler.negatives"));
  candidates_ = static_cast<int>(c.integer("sampler.candidates"));
  max_len_ = c.integer("user_tower.max_len");
  length_buckets_ = c.integer("train.length_buckets");
  pack_windows_ = c.flag("train.pack_windows");
  session_parallel_ = c.flag("train.session_parallel");
  bptt_ = c.integer("train.bptt");
  mask_prob_ = c.real("train.mask_prob");
  score_in_place_ = c.flag("train.score_in_place");
  const std::string& bm = c.str("sampler.batch_mining");
  batch_mining_ = bm == "hard" ? Mining::Hard : bm == "semi_hard" ? Mining::SemiHard : Mining::None;
  prefetch_ = c.flag("train.prefetch");
  mining_ = sampler_.mining();
  seed_ = static_cast<uint64_t>(c.integer("train.seed"));
  const bool drawn = mining_ != Mining::InBatch && mining_ != Mining::Proxies;  // negatives are sampled items
  if (loss_.min_negatives() > k_ && drawn)
    throw ConfigError(
        fmt::format("loss.type '{}' needs sampler.negatives >= {}", c.str("loss.type"), loss_.min_negatives()));
  if (mining_ == Mining::Proxies && loss_.min_negatives() == 0)
    throw ConfigError(fmt::format(
        "sampler.type 'proxies' makes the other labels' proxies the negatives; loss.type '{}' reads none (use "
        "infonce, triplet, contrastive, bce, bpr or warp)",
        c.str("loss.type")));
  if (loss_.min_negatives() == 0 || mining_ == Mining::Proxies) k_ = 0;
  if (loss_.needs_metric() && !net_.comparator()->is_metric())
    throw ConfigError(
        fmt::format("loss.type '{}' needs a distance; comparator.type '{}' is not a metric (use euclidean, "
                    "sq_euclidean, manhattan or cosine)",
                    c.str("loss.type"), c.str("comparator.type")));
  if (loss_.needs_neg_neg() && !drawn)
    throw ConfigError(fmt::format("loss.type 'quadruplet' cannot use sampler.type '{}'", c.str("sampler.type")));
  if (sampler_.mines_candidates() && candidates_ < k_)
    throw ConfigError("sampler.candidates must be >= sampler.negatives for hard/semi_hard mining");
}

void Trainer::make_negatives(const std::vector<int64_t>& a, const std::vector<int64_t>& p, int64_t n,
                             uint64_t batch_seed, std::vector<int64_t>& negs) {
  int per = sampler_.mines_candidates() ? candidates_ : k_;
  negs.resize(static_cast<size_t>(n) * per);
  std::mt19937_64 rng(batch_seed);
  for (int64_t r = 0; r < n; ++r) {
    const int32_t ar = static_cast<int32_t>(a[r]), pr = static_cast<int32_t>(p[r]);
    for (int j = 0; j < per; ++j) {
      int32_t x = sampler_.draw(rng);
      for (int tries = 0; tries < 50 && (x == pr || builder_.is_positive(ar, x) || builder_.heldout(x)); ++tries)
        x = sampler_.draw(rng);
      negs[r * per + j] = x;
    }
  }
}

void Trainer::proxy_targets(const std::vector<int64_t>& a, const std::vector<int64_t>& p, int64_t n,
                            std::vector<int64_t>& label, std::vector<uint8_t>& mask) const {
  const auto& labels = *builder_.item_labels();
  const int64_t L = proxies_.size(0);
  label.resize(static_cast<size_t>(n));
  mask.assign(static_cast<size_t>(n * L), 1);
  for (int64_t r = 0; r < n; ++r) {
    const auto& la = labels[a[r]];
    const auto& lp = labels[p[r]];
    label[r] = la.front();  // the label the tuple's positive shares with its anchor (the first such)
    for (auto x : la)
      if (std::find(lp.begin(), lp.end(), x) != lp.end()) {
        label[r] = x;
        break;
      }
    for (auto x : la) mask[r * L + x] = 0;  // none of the anchor's own labels is a negative
  }
}

void Trainer::init_proxies() {
  const auto* labels = builder_.item_labels();
  const int64_t L = builder_.n_labels();
  if (!labels || L < 2)
    throw ConfigError(
        "sampler.type 'proxies' learns one vector per label: it needs sampler.builder label and items with at "
        "least two labels between them");
  if (dist::active())
    throw ConfigError(
        "sampler.type 'proxies' trains in one process (its label vectors are not exchanged between ranks)");
  // Rows of norm about 1, as the towers' outputs start.
  proxies_ = (torch::randn({L, net_.dim()}) / std::sqrt(static_cast<double>(net_.dim()))).requires_grad_(true);
}

void Trainer::in_batch_negatives(const std::vector<int64_t>& a, const std::vector<int64_t>& p, int64_t n,
                                 std::vector<uint8_t>& mask) const {
  mask.assign(static_cast<size_t>(n * n), 1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i == j || p[j] == p[i] || builder_.is_positive(static_cast<int32_t>(a[i]), static_cast<int32_t>(p[j])))
        mask[i * n + j] = 0;
}

torch::Tensor Trainer::sequence_rows(const std::vector<int64_t>& order, size_t lo, size_t hi, uint64_t batch_seed,
                                     std::vector<int64_t>& a, std::vector<int64_t>& p) {
  const Csr& S = *builder_.sequences();
  const auto& pos = builder_.positives();
  const int64_t n = static_cast<int64_t>(hi - lo);
  const bool cloze = net_.cloze();
  int64_t L = 1;
  std::vector<int64_t> start(n), len(n);
  for (int64_t r = 0; r < n; ++r) {
    const Positive& w = pos[order[lo + r]];
    int64_t end = S.begin(w.a) + w.p;
    // Causal: the inputs are all but the window's last item, each predicting the next; Cloze: the
    // window's max_len items, the masked ones predicted.
    start[r] = std::max(S.begin(w.a), end - max_len_ - (cloze ? 0 : 1));
    len[r] = end - start[r] - (cloze ? 0 : 1);
    L = std::max(L, len[r]);
  }
  // Cloze: each input is masked with probability train.mask_prob, and at least one per window.
  std::vector<int64_t> moff(n + 1, 0);
  std::vector<uint8_t> masked;
  if (cloze) {
    for (int64_t r = 0; r < n; ++r) moff[r + 1] = moff[r] + len[r];
    masked.assign(static_cast<size_t>(moff[n]), 0);
    std::mt19937_64 rng(batch_seed);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    for (int64_t r = 0; r < n; ++r) {
      bool any = false;
      for (int64_t t = 0; t < len[r]; ++t) any |= (masked[moff[r] + t] = coin(rng) < mask_prob_) != 0;
      if (!any && len[r] > 0) masked[moff[r] + static_cast<int64_t>(rng() % static_cast<uint64_t>(len[r]))] = 1;
    }
  }
  a.clear(), p.clear();
  std::vector<int64_t> flat, seq;
  // Window r's input t into slot `at` of the input rows, with its training row when it has one.
  auto place = [&](int64_t r, int64_t t, int64_t at) {
    const int32_t u = pos[order[lo + r]].a;
    const int64_t item = S.indices[start[r] + t];
    if (!cloze) {
      seq[at] = item;
      a.push_back(u), p.push_back(S.indices[start[r] + t + 1]), flat.push_back(at);
    } else if (masked[moff[r] + t]) {
      seq[at] = Tower::kMaskItem;
      a.push_back(u), p.push_back(item), flat.push_back(at);
    } else {
      seq[at] = item;
    }
  };
  if (pack_windows_ && net_.packs_positions() && n > 1) {
    // First fit, longest window first, into rows as wide as the longest: the rows (user, next item)
    // stay in window order; only where each window's states sit changes.
    std::vector<int64_t> by_len(n), row(n), col(n), fill;
    std::iota(by_len.begin(), by_len.end(), 0);
    std::stable_sort(by_len.begin(), by_len.end(), [&](int64_t x, int64_t y) { return len[x] > len[y]; });
    std::vector<std::vector<int64_t>> segments;
    for (int64_t r : by_len) {
      if (len[r] == 0) continue;
      size_t k = 0;
      while (k < fill.size() && fill[k] + len[r] > L) ++k;
      if (k == fill.size()) fill.push_back(0), segments.emplace_back();
      row[r] = static_cast<int64_t>(k), col[r] = fill[k];
      fill[k] += len[r];
      segments[k].push_back(len[r]);
    }
    const int64_t R = std::max<int64_t>(1, static_cast<int64_t>(fill.size()));
    if (segments.empty()) segments.emplace_back();
    seq.assign(static_cast<size_t>(R * L), 0);
    // Segments sit in a row in the order they were placed (col increases with placement).
    for (int64_t r = 0; r < n; ++r)
      for (int64_t t = 0; t < len[r]; ++t) place(r, t, row[r] * L + col[r] + t);
    auto st = net_.user_packed(torch::from_blob(seq.data(), {R, L}, torch::kInt64).clone(), segments);
    return st.reshape({R * L, -1}).index_select(0, torch::tensor(flat, torch::kInt64));
  }
  seq.assign(static_cast<size_t>(n * L), 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t t = 0; t < len[r]; ++t) place(r, t, r * L + t);
  auto tseq = torch::from_blob(seq.data(), {n, L}, torch::kInt64).clone();
  auto tlen = torch::from_blob(len.data(), {n}, torch::kInt64).clone();
  auto st = net_.user_positions(tseq, tlen);
  return st.reshape({n * L, -1}).index_select(0, torch::tensor(flat, torch::kInt64));
}

torch::Tensor Trainer::session_rows(const SessionChunk& c, int64_t n_lanes, std::vector<torch::Tensor>& lanes,
                                    std::vector<int64_t>& a, std::vector<int64_t>& p) {
  const int64_t R = c.rows(), K = c.steps;
  auto seq = torch::from_blob(const_cast<int64_t*>(c.seq.data()), {R, K}, torch::kInt64).clone();
  auto reset = torch::from_blob(const_cast<uint8_t*>(c.reset.data()), {R, K}, torch::kUInt8).clone();
  auto idx = torch::tensor(c.lanes, torch::kInt64);
  std::vector<torch::Tensor> state;
  for (const auto& l : lanes) state.push_back(l.index_select(0, idx));
  auto st = net_.user_stream(seq, reset, state);
  {
    torch::NoGradGuard ng;
    if (lanes.empty())
      for (const auto& s : state) lanes.push_back(torch::zeros({n_lanes, s.size(1)}, s.options()));
    for (size_t k = 0; k < lanes.size(); ++k) lanes[k].index_copy_(0, idx, state[k]);
  }
  a = c.user, p = c.next;
  return st.reshape({R * K, -1}).index_select(0, torch::tensor(c.flat, torch::kInt64));
}

// Hard: the k most similar candidates; semi-hard: farther than the positive but within the
// margin (closest first), then the hardest of the rest.
torch::Tensor Trainer::mine(const torch::Tensor& ea_in, const torch::Tensor& p, const torch::Tensor& cand) {
  torch::NoGradGuard ng;
  auto comp = net_.comparator();
  int64_t B = cand.size(0), M = cand.size(1);
  auto ea = ea_in.detach();
  auto ec = net_.items(cand.reshape({-1})).view({B, M, -1});
  torch::Tensor key;
  if (mining_ == Mining::Hard) {
    key = comp->similarity(ea.unsqueeze(1), ec);
  } else {
    auto dp = comp->distance(ea, net_.items(p)).unsqueeze(1);
    auto dc = comp->distance(ea.unsqueeze(1), ec);
    double margin = cfg_.real("loss.margin");
    auto semi = (dc > dp).logical_and(dc < dp + margin);
    auto big = dc.max() + margin + 1.0;  // semi-hard first (closest first), then the rest by distance
    key = torch::where(semi, big - dc, -dc - big);
  }
  auto idx = std::get<1>(key.topk(k_, 1));
  return cand.gather(1, idx);
}

// One negative per anchor among the batch's valid negatives: hard = the closest; semi_hard = the
// closest that is still farther than the positive (FaceNet), else the closest.
torch::Tensor Trainer::mine_in_batch(const torch::Tensor& pos, const torch::Tensor& neg, const torch::Tensor& mask,
                                     bool dist) {
  torch::NoGradGuard ng;
  auto d_an = dist ? neg.detach() : -neg.detach();  // smaller = closer
  auto d_ap = (dist ? pos.detach() : -pos.detach()).unsqueeze(1);
  const float inf = std::numeric_limits<float>::infinity();
  auto closest = torch::where(mask, d_an, torch::full_like(d_an, inf));
  auto pick = std::get<1>(closest.min(1));
  if (batch_mining_ == Mining::SemiHard) {
    auto semi = torch::where(mask.logical_and(d_an > d_ap), d_an, torch::full_like(d_an, inf));
    auto best = semi.min(1);
    pick = torch::where(std::get<0>(best) < inf, std::get<1>(best), pick);
  }
  auto has = mask.any(1);
  auto out = torch::zeros_like(mask);
  out.scatter_(1, pick.unsqueeze(1), has.unsqueeze(1));
  return out;
}

void Trainer::save_checkpoint(const std::string& path, int epoch, double best, int best_epoch, int bad,
                              const std::vector<torch::Tensor>& best_state, const EpochRunner& runner) {
  BinWriter w(kCkptMagic, 2);
  w.put_str(cfg_.to_yaml());
  w.put<uint64_t>(data_hash());  // v2: the training data it was written for
  w.put<int32_t>(epoch);
  w.put<double>(best);
  w.put<int32_t>(best_epoch);
  w.put<int32_t>(bad);
  write_state(w, net_);
  w.put<uint64_t>(best_state.size());
  for (auto& t : best_state) {
    auto c = t.contiguous();
    std::vector<float> v(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    w.put_vec(v);
  }
  w.put_str(runner.save_state());
  if (proxies_.defined()) {  // sampler.type proxies: the label vectors (the config says whether they are here)
    auto c = proxies_.detach().contiguous();
    w.put_vec(std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
  }
  w.save(path);
}

// The training data a checkpoint belongs to: the builder's positives in order (the data, its
// split and filters, and an update's replay sample) and the table sizes.
uint64_t Trainer::data_hash() const {
  const auto& ps = builder_.positives();
  uint64_t h = dist::hash_bytes(ps.data(), ps.size() * sizeof(Positive));
  const int64_t sizes[2] = {n_items_, static_cast<int64_t>(ps.size())};
  return dist::hash_bytes(sizes, sizeof sizes, h);
}

bool Trainer::load_checkpoint(const std::string& path, int& epoch, double& best, int& best_epoch, int& bad,
                              std::vector<torch::Tensor>& best_state) {
  // In a process group rank 0's checkpoint restarts every rank (it alone writes them).
  std::string bytes;
  dist::Group* G = dist::active();
  if (!G || G->rank() == 0) bytes = file_exists(path) ? "1" + read_file(path) : "0";
  if (G) G->broadcast(bytes, 0, "the broadcast of the checkpoint");
  if (bytes.empty() || bytes[0] != '1') return false;
  BinReader r(bytes.substr(1), kCkptMagic, 2, path, "checkpoint");
  std::string yaml = r.get_str();
  if (yaml != cfg_.to_yaml())
    throw ConfigError(
        fmt::format("checkpoint '{}' was written with a different config; remove it or drop --resume", path));
  // The same config on other data (another update's new interactions, an edited file) would
  // continue a run that never saw this data: refused. Version 1 checkpoints carry no hash.
  if (r.version() >= 2 && r.get<uint64_t>() != data_hash())
    throw ConfigError(fmt::format(
        "checkpoint '{}' was written for other training data ({} positives now; the data or its order changed "
        "since the interrupted run); remove it or drop --resume",
        path, builder_.positives().size()));
  epoch = r.get<int32_t>();
  best = r.get<double>();
  best_epoch = r.get<int32_t>();
  bad = r.get<int32_t>();
  read_state(r, net_, "checkpoint '" + path + "'");
  uint64_t n = r.get<uint64_t>();
  auto params = net_.parameters();
  if (n != 0 && n != params.size()) throw Error(fmt::format("checkpoint '{}' is malformed (best weights)", path));
  best_state.clear();
  for (uint64_t k = 0; k < n; ++k) {
    std::vector<float> v;
    r.get_vec(v);
    if (static_cast<int64_t>(v.size()) != params[k].numel())
      throw Error(fmt::format("checkpoint '{}' is malformed (best weights)", path));
    best_state.push_back(torch::from_blob(v.data(), params[k].sizes(), torch::kFloat32).clone());
  }
  pending_state_ = r.get_str();  // the engine's optimizer state, loaded once the engine runs
  if (proxies_.defined()) {
    std::vector<float> v;
    r.get_vec(v);
    if (static_cast<int64_t>(v.size()) != proxies_.numel())
      throw Error(fmt::format("checkpoint '{}' is malformed (label proxies)", path));
    torch::NoGradGuard ng;
    proxies_.copy_(torch::from_blob(v.data(), proxies_.sizes(), torch::kFloat32));
  }
  return true;
}

// A data-parallel step: every rank computed the mean gradient of its n rows; this makes every
// rank's gradient the mean over all ranks' rows (the gradient of the global mini-batch). Dense
// gradients travel in one allreduce (with the row counts); embedding tables exchange only the rows
// they touched (every rank's row ids and values, summed in rank order): never the dense table.
static void sync_gradients(dist::Group& G, SiameseNet& net, int64_t n, bool sparse) {
  torch::NoGradGuard ng;
  auto params = net.parameters();
  auto tables = net.tables();
  auto is_table = [&](const torch::Tensor& p) {
    for (auto& t : tables)
      if (t.is_same(p)) return true;
    return false;
  };
  // Dense: n x gradient, and n, summed; then divided by the total.
  std::vector<torch::Tensor> dense;
  for (auto& p : params)
    if (!is_table(p)) dense.push_back(p);
  int64_t numel = 1;
  for (auto& p : dense) numel += p.numel();
  std::vector<float> bucket(static_cast<size_t>(numel), 0.0f);
  int64_t off = 0;
  for (auto& p : dense) {
    if (p.grad().defined() && n > 0) {
      auto g = p.grad().contiguous().view({-1});
      std::copy_n(g.data_ptr<float>(), g.numel(), bucket.data() + off);
    }
    off += p.numel();
  }
  for (int64_t k = 0; k < off; ++k) bucket[k] *= static_cast<float>(n);
  bucket[off] = static_cast<float>(n);  // the row count rides at the end
  G.sum(bucket.data(), bucket.size(), "the gradient allreduce");
  const double total = bucket[off];
  if (total <= 0) return;
  const float inv = static_cast<float>(1.0 / total);
  off = 0;
  for (auto& p : dense) {
    auto g = torch::from_blob(bucket.data() + off, p.sizes(), torch::kFloat32).mul(inv);
    if (p.grad().defined())
      p.mutable_grad().copy_(g);
    else
      p.mutable_grad() = g.clone();
    off += p.numel();
  }
  // Tables: the touched rows of every rank.
  for (auto& p : tables) {
    const int64_t d = p.size(1);
    torch::Tensor idx, val;
    if (p.grad().defined() && n > 0) {
      if (p.grad().is_sparse()) {
        auto c = p.grad().coalesce();
        idx = c.indices()[0].contiguous();
        val = c.values().contiguous();
      } else {
        idx = p.grad().abs().sum(1).nonzero().view({-1}).contiguous();
        val = p.grad().index_select(0, idx).contiguous();
      }
    }
    std::vector<int64_t> ids;
    std::vector<float> vals;
    if (idx.defined()) {
      ids.assign(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
      auto v = val.mul(static_cast<double>(n)).contiguous();
      vals.assign(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
    }
    G.sum_rows(ids, vals, d, "the exchange of embedding rows");
    const int64_t m = static_cast<int64_t>(ids.size());
    auto ti = torch::from_blob(ids.data(), {m}, torch::kInt64).clone();
    auto tv = torch::from_blob(vals.data(), {m, d}, torch::kFloat32).mul(inv);
    if (sparse) {  // the optimizer's sparse (lazy) form, as on one process
      p.mutable_grad() = torch::sparse_coo_tensor(ti.unsqueeze(0), tv, p.sizes()).coalesce();
    } else {
      auto g = torch::zeros_like(p);
      g.index_add_(0, ti, tv);
      p.mutable_grad() = g;
    }
  }
}

// Every rank starts from rank 0's parameters (as DDP does).
static void broadcast_parameters(dist::Group& G, SiameseNet& net) {
  torch::NoGradGuard ng;
  for (auto& p : net.parameters()) {
    auto c = p.detach().contiguous();  // the parameter's own storage when contiguous
    G.broadcast(c.data_ptr<float>(), static_cast<size_t>(c.numel()), 0, "the broadcast of the initial parameters");
    if (c.data_ptr() != p.data_ptr()) p.copy_(c);
  }
}

static std::string fmt_secs(double s) {
  if (s < 60) return fmt::format("{:.0f}s", s);
  return fmt::format("{:.0f}m{:02.0f}s", std::floor(s / 60), std::fmod(s, 60));
}

// The LibTorch engine's epoch (the fused engine, train/fused.h, is the other EpochRunner): the
// tuples in a shuffled order, in mini-batches prepared on a helper thread (negatives drawn, or
// candidates for mining), the anchors' and items' embeddings through the towers, the loss and the
// regularizers by autograd, an optimizer step, unit-ball clipping, and a progress line on terminals.
class Trainer::TorchEpochs : public EpochRunner {
 public:
  TorchEpochs(Trainer& t, float label_offset, int epochs)
      : t_(t), label_offset_(label_offset), epochs_(epochs), tty_(isatty(STDERR_FILENO)) {}
  double run_epoch(int epoch) override;
  void set_lr(double lr) override { t_.opt_->set_lr(lr); }
  std::string save_state() const override {
    torch::serialize::OutputArchive ar;
    t_.opt_->save(ar);
    std::ostringstream os;
    ar.save_to(os);
    return os.str();
  }
  void load_state(const std::string& bytes) override {
    std::istringstream is(bytes);
    torch::serialize::InputArchive ar;
    ar.load_from(is);
    t_.opt_->load(ar);
  }
  EpochStats last_stats() const override { return stats_; }

 private:
  Trainer& t_;
  float label_offset_;
  int epochs_;
  bool tty_;
  EpochStats stats_;
};

double Trainer::TorchEpochs::run_epoch(int epoch) {
  Trainer& T = t_;
  const Config& c = T.cfg_;
  const int epochs = epochs_;
  const float label_offset = label_offset_;
  const int64_t B = c.integer("train.batch_size");
  const double l2 = c.real("reg.l2"), cov = c.real("reg.cov"), max_norm = c.real("reg.max_norm");
  const auto& pos = T.builder_.positives();
  auto comp = T.net_.comparator();
  const bool dist = T.loss_.wants_distance();
  const bool sequential = T.builder_.sequences() != nullptr;
  const bool tty = tty_;
  auto& net_ = T.net_;
  auto& loss_ = T.loss_;
  auto& opt_ = T.opt_;
  const auto& mining_ = T.mining_;
  const auto& batch_mining_ = T.batch_mining_;
  const int k_ = T.k_, candidates_ = T.candidates_;
  const uint64_t seed_ = T.seed_;
  const int32_t n_items_ = T.n_items_;
  std::vector<int64_t> order(pos.size()), negs;
  std::vector<int64_t> a(B), p(B);
  std::vector<float> y(B);
  std::iota(order.begin(), order.end(), 0);
  {
    std::mt19937_64 rng(mix64(seed_ ^ mix64(static_cast<uint64_t>(epoch))));
    for (size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[rng() % k]);
    // Sequence windows: sorted by length within groups of train.length_buckets batches, then the
    // batches shuffled, so a batch pads to about its own windows' length, not the longest's.
    const int64_t G = T.length_buckets_;
    if (sequential && G > 1 && B > 1) {
      auto len = [&](int64_t k) { return std::min<int64_t>(pos[k].p, T.max_len_ + 1); };
      const size_t group = static_cast<size_t>(G * B);
      for (size_t g0 = 0; g0 < order.size(); g0 += group) {
        const auto first = order.begin() + static_cast<std::ptrdiff_t>(g0);
        const auto last = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), g0 + group));
        std::stable_sort(first, last, [&](int64_t x, int64_t y) { return len(x) < len(y); });
      }
      const size_t nbat = (order.size() + B - 1) / B;
      std::vector<size_t> perm(nbat);
      std::iota(perm.begin(), perm.end(), 0);
      for (size_t k = nbat; k > 1; --k) std::swap(perm[k - 1], perm[rng() % k]);
      std::vector<int64_t> shuffled;
      shuffled.reserve(order.size());
      for (size_t b : perm)
        for (size_t k = b * B; k < std::min(order.size(), (b + 1) * static_cast<size_t>(B)); ++k)
          shuffled.push_back(order[k]);
      order.swap(shuffled);
    }
  }
  auto t0 = Clock::now();
  double prep_wait = 0;  // time the training loop waited for a prepared batch
  auto last_print = t0;
  double loss_sum = 0;
  int64_t seen = 0;
  // Data-parallel (a process group): global mini-batch b is rows [b GB, (b+1) GB) of the shared
  // order, GB = B x ranks; each rank trains its slice of it and the gradients are averaged.
  dist::Group* G = dist::active();
  const int W = G ? G->size() : 1, R = G ? G->rank() : 0;
  const size_t GB = static_cast<size_t>(B) * W;
  // train.session_parallel: the epoch's mini-batches are lanes of whole histories (one process).
  const bool streaming = sequential && T.session_parallel_;
  std::vector<SessionChunk> chunks;
  std::vector<torch::Tensor> lane_states;  // each lane's carried state
  if (streaming)
    chunks = session_chunks(*T.builder_.sequences(), B, T.bptt_, mix64(seed_ ^ mix64(static_cast<uint64_t>(epoch))));
  const size_t nb = streaming ? chunks.size() : (order.size() + GB - 1) / GB;
  auto slice = [&](size_t b, size_t& lo, size_t& hi) {
    const size_t g0 = b * GB, n = std::min(order.size(), g0 + GB) - g0;
    lo = g0 + n * R / W, hi = g0 + n * (R + 1) / W;
  };
  const uint64_t rank_seed = W > 1 ? mix64(0x5eedULL + static_cast<uint64_t>(R)) : 0;
  // Batch preparation (tuples, negative draws, in-batch masks) needs no model: the next batch is
  // prepared on a helper thread while the current one trains (not for sequence builders, whose
  // rows come out of the network).
  struct Batch {
    std::vector<int64_t> a, p, negs;
    std::vector<float> y;
    std::vector<uint8_t> mask;
  };
  const bool in_batch_mask = mining_ == Mining::InBatch && loss_.min_negatives() > 0;
  const bool proxies = mining_ == Mining::Proxies;
  const int per = T.sampler_.mines_candidates() ? candidates_ : k_;
  double prep_work = 0;  // written by one preparation at a time; read after the last get()
  // Batch b's negative draws (seeded by epoch and batch) and in-batch mask, for rows (a, p).
  auto negatives = [&, epoch](size_t b, const std::vector<int64_t>& a, const std::vector<int64_t>& p, int64_t n,
                              std::vector<int64_t>& negs, std::vector<uint8_t>& mask) {
    if (k_ > 0 && mining_ != Mining::InBatch)
      T.make_negatives(a, p, n, mix64(seed_ ^ mix64(static_cast<uint64_t>(epoch) * 1000003ULL + b)) ^ rank_seed, negs);
    if (in_batch_mask) T.in_batch_negatives(a, p, n, mask);
    if (proxies) T.proxy_targets(a, p, n, negs, mask);  // negs: each row's label
  };
  auto prepare_batch = [&](size_t b, Batch& out) {
    auto tp0 = Clock::now();
    size_t lo, hi;
    slice(b, lo, hi);
    int64_t n = static_cast<int64_t>(hi - lo);
    out.a.resize(n), out.p.resize(n), out.y.resize(n);
    for (int64_t r = 0; r < n; ++r) {
      const Positive& t = pos[order[lo + r]];
      out.a[r] = t.a, out.p[r] = t.p, out.y[r] = t.y - label_offset;
    }
    negatives(b, out.a, out.p, n, out.negs, out.mask);
    prep_work += std::chrono::duration<double>(Clock::now() - tp0).count();
  };
  Batch bufs[2];
  std::vector<uint8_t> mask;
  std::future<void> next;
  // train.prefetch false: the same preparation, run in the loop when the batch is needed.
  const auto policy = T.prefetch_ ? std::launch::async : std::launch::deferred;
  auto launch = [&](size_t b) { next = std::async(policy, [&, b] { prepare_batch(b, bufs[b & 1]); }); };
  if (!sequential && nb > 0) launch(0);
  for (size_t b = 0; b < nb; ++b) {
    size_t lo, hi;
    slice(b, lo, hi);
    int64_t n = static_cast<int64_t>(hi - lo);
    torch::Tensor ea;
    if (streaming) {  // every position of the lanes' next train.bptt inputs is a row
      ea = T.session_rows(chunks[b], B, lane_states, a, p);
      n = static_cast<int64_t>(a.size());
      y.assign(static_cast<size_t>(n), 1.0f);
      negatives(b, a, p, n, negs, mask);
    } else if (sequential) {  // every position of the windows is a row
      ea = T.sequence_rows(order, lo, hi, mix64(seed_ ^ mix64(static_cast<uint64_t>(epoch) * 7919ULL + b) ^ 0xc10e), a,
                           p);
      n = static_cast<int64_t>(a.size());
      y.assign(static_cast<size_t>(n), 1.0f);
      negatives(b, a, p, n, negs, mask);
    } else {
      auto tw = Clock::now();
      next.get();  // the prepared batch b
      prep_wait += std::chrono::duration<double>(Clock::now() - tw).count();
      Batch& cur = bufs[b & 1];
      std::swap(a, cur.a), std::swap(p, cur.p), std::swap(y, cur.y), std::swap(negs, cur.negs),
          std::swap(mask, cur.mask);
      if (b + 1 < nb) launch(b + 1);
    }
    if (n == 0) {  // a rank without rows in a short last global batch still takes part in the step
      opt_->zero_grad();
      if (G) sync_gradients(*G, net_, 0, net_.sparse());
      opt_->step();
      continue;
    }
    auto ta = torch::from_blob(a.data(), {n}, torch::kInt64).clone();
    auto tp = torch::from_blob(p.data(), {n}, torch::kInt64).clone();
    if (!sequential) ea = net_.anchors(ta);
    torch::Tensor tn;
    if (k_ > 0 && mining_ != Mining::InBatch) {
      tn = torch::from_blob(negs.data(), {n, per}, torch::kInt64).clone();
      if (per != k_) tn = T.mine(ea, tp, tn);
    }
    LossInputs li;
    li.n_items = n_items_;
    // Dot and cosine scores of an item tower that gathers table rows are read in place: the same
    // values and gradients without copying the rows (comparators/gathered.h); the positive and the
    // sampled negatives in one pass.
    torch::Tensor table;
    Similarity kind = Similarity::Dot;
    if (T.score_in_place_ && !dist && !loss_.needs_neg_neg() && comp->gemm(&kind) &&
        (kind == Similarity::Dot || kind == Similarity::Cosine))
      table = net_.item_table();
    const bool cosine = kind == Similarity::Cosine;
    const bool pos_in_place = table.defined() && cov == 0 && mining_ != Mining::InBatch;
    torch::Tensor ep, en;
    if (proxies) {  // the row's label's proxy is the positive, every other label's proxy a negative
      const auto& P = T.proxies_;
      ep = P.index_select(0, torch::from_blob(negs.data(), {n}, torch::kInt64).clone());
      li.pos = dist ? comp->distance(ea, ep) : comp->similarity(ea, ep);
      li.neg = dist ? comp->distance_matrix(ea, P) : comp->similarity_matrix(ea, P);
      li.neg_mask = torch::from_blob(mask.data(), {n, P.size(0)}, torch::kUInt8).to(torch::kBool);
      if (batch_mining_ != Mining::None) li.neg_mask = T.mine_in_batch(li.pos, li.neg, li.neg_mask, dist);
    } else if (pos_in_place && tn.defined()) {
      auto s = gathered_similarity(ea, table, torch::cat({tp.unsqueeze(1), tn}, 1), cosine);
      li.pos = s.select(1, 0);
      li.neg = s.slice(1, 1);
    } else if (pos_in_place) {
      li.pos = gathered_similarity(ea, table, tp.unsqueeze(1), cosine).squeeze(1);
    } else {
      ep = net_.items(tp);
      li.pos = dist ? comp->distance(ea, ep) : comp->similarity(ea, ep);
    }
    if (mining_ == Mining::InBatch && loss_.min_negatives() > 0) {
      li.neg = dist ? comp->distance_matrix(ea, ep) : comp->similarity_matrix(ea, ep);
      li.neg_mask = torch::from_blob(mask.data(), {n, n}, torch::kUInt8).to(torch::kBool);
      if (batch_mining_ != Mining::None) li.neg_mask = T.mine_in_batch(li.pos, li.neg, li.neg_mask, dist);
    } else if (tn.defined() && !li.neg.defined()) {
      if (table.defined()) {
        li.neg = gathered_similarity(ea, table, tn, cosine);
      } else {
        en = net_.items(tn.reshape({-1})).view({n, k_, -1});
        li.neg = dist ? comp->distance(ea.unsqueeze(1), en) : comp->similarity(ea.unsqueeze(1), en);
        if (loss_.needs_neg_neg()) li.neg_neg = comp->distance(en.select(1, 0), en.select(1, 1));
      }
    }
    if (loss_.uses_labels()) li.labels = torch::from_blob(y.data(), {n}, torch::kFloat32).clone();
    auto loss = loss_.forward(li);
    if (l2 > 0) {
      // Rows scored in place: the same sum over the table, each row times its count.
      auto table_rows = [&](const torch::Tensor& ids) {
        auto counts = torch::bincount(ids.reshape({-1}), {}, table.size(0)).to(torch::kFloat32);
        return (counts * table.pow(2).sum(1)).sum() / static_cast<double>(ids.numel());
      };
      auto r = ea.pow(2).sum(1).mean() + (ep.defined() ? ep.pow(2).sum(1).mean() : table_rows(tp));
      if (en.defined()) {
        r = r + en.pow(2).sum(2).mean();
      } else if (tn.defined() && table.defined()) {
        r = r + table_rows(tn);
      }
      loss = loss + l2 * r;
    }
    if (cov > 0) {  // CML covariance regularizer: decorrelate embedding dimensions
      auto x = torch::cat({ea, ep}, 0);
      auto xc = x - x.mean(0, true);
      auto C = xc.t().mm(xc) / static_cast<double>(x.size(0));
      loss = loss + cov * (C.pow(2).sum() - C.diagonal().pow(2).sum()) / static_cast<double>(x.size(0));
    }
    opt_->zero_grad();
    loss.backward();
    if (G) sync_gradients(*G, net_, n, net_.sparse());
    opt_->step();
    if (max_norm > 0) {  // unit-ball (radius max_norm) clipping of embedding rows
      torch::NoGradGuard ng;
      for (auto& t : net_.tables()) {
        auto norms = t.norm(2, 1, true).clamp_min(max_norm);
        t.mul_(max_norm / norms);
      }
    }
    double lv = loss.item<double>();
    if (!std::isfinite(lv))
      throw Error(
          fmt::format("training diverged: loss is {} at epoch {} batch {} (lower train.lr?)", lv, epoch, b + 1));
    loss_sum += lv * n;
    seen += n;
    if (tty && std::chrono::duration<double>(Clock::now() - last_print).count() > 0.5) {
      last_print = Clock::now();
      double el = std::chrono::duration<double>(last_print - t0).count();
      double rate = seen / std::max(el, 1e-9);
      double eta = (static_cast<double>(order.size()) - seen) / std::max(rate, 1e-9) +
                   (epochs - epoch) * static_cast<double>(order.size()) / std::max(rate, 1e-9);
      fmt::print(stderr, "\repoch {}/{} [{:>3.0f}%] loss {:.4f} {:.0f} tuples/s ETA {}   ", epoch, epochs,
                 100.0 * seen / order.size(), loss_sum / seen, rate, fmt_secs(eta));
    }
  }
  if (tty) fmt::print(stderr, "\r{:80}\r", "");
  if (G) {  // the epoch's loss over every rank's rows
    double v[2] = {loss_sum, static_cast<double>(seen)};
    G->sum(v, 2, "the epoch's loss");
    loss_sum = v[0], seen = static_cast<int64_t>(v[1]);
  }
  stats_.examples = seen;
  stats_.prep_seconds = prep_work;
  stats_.prep_wait_seconds = prep_wait;
  return loss_sum / std::max<int64_t>(seen, 1);
}

TrainReport Trainer::run(const FitData& d, float label_offset) {
  const Config& c = cfg_;
  n_items_ = d.ds->n_items();
  torch::manual_seed(seed_);
  std::string opt_name = c.str("train.optimizer");
  double lr = c.real("train.lr");
  auto params = net_.parameters();
  if (mining_ == Mining::Proxies) {
    init_proxies();
    params.push_back(proxies_);
  }
  opt_ = make_optimizer(opt_name, params, lr, c.real("train.weight_decay"), c.real("train.adam_beta2"));
  net_.set_sparse(opt_->wants_sparse() && !runner_);
  // A process group: every rank must train on the same data (the configs were compared when the
  // group was joined), from rank 0's parameters; rank 0 alone writes logs and checkpoints.
  dist::Group* G = dist::active();
  const bool writer = !G || G->rank() == 0;
  if (G) {
    const auto& ps = builder_.positives();
    G->check_same(dist::hash_bytes(ps.data(), ps.size() * sizeof(Positive)), "training data");
    broadcast_parameters(*G, net_);
    torch::manual_seed(seed_ + static_cast<uint64_t>(G->rank()));  // dropout masks differ across ranks
  }
  const int epochs = static_cast<int>(c.integer("train.epochs"));
  const int lr_step = static_cast<int>(c.integer("train.lr_step"));
  const double gamma = c.real("train.lr_gamma");
  const bool cosine = c.str("train.lr_schedule") == "cosine";
  // The cosine's horizon is the configured epoch count, also in a refit pass (whose train.epochs is
  // the best epoch of the fit it repeats).
  const int horizon = std::max(epochs, d.cfg ? static_cast<int>(d.cfg->integer("train.epochs")) : 0);
  if (cosine && lr_step > 0) throw ConfigError("train.lr_schedule cosine does not read train.lr_step: set one of them");
  const int patience = static_cast<int>(c.integer("train.patience"));
  const int eval_every = static_cast<int>(c.integer("train.eval_every"));
  const auto& pos = builder_.positives();
  if (pos.empty()) throw Error("the tuple builder produced no positive tuples from the training data");

  TrainReport rep;
  rep.valid_metric = c.str("train.valid_metric");
  int start = 0, best_epoch = 0, bad = 0;
  double best = -1e300;
  std::vector<torch::Tensor> best_state;
  if (d.resume && !d.checkpoint.empty()) {
    if (load_checkpoint(d.checkpoint, start, best, best_epoch, bad, best_state))
      spdlog::info("resumed from checkpoint '{}' after epoch {}", d.checkpoint, start);
    else
      spdlog::info("no checkpoint at '{}': starting from scratch", d.checkpoint);
  }
  std::ofstream log;
  if (!d.log_path.empty() && writer) {
    // The refit pass continues the log of the pass that chose its epoch count.
    log.open(d.log_path, start > 0 || d.refit_pass ? std::ios::app : std::ios::trunc);
    if (!log) throw Error(fmt::format("cannot write training log '{}'", d.log_path));
  }
  auto t_start = Clock::now();
  const bool sequential = builder_.sequences() != nullptr;
  if (!sequential && net_.sequential())
    throw ConfigError(
        "user_tower.type gru/lstm/transformer reads a history causally and needs sampler.builder sequence "
        "(with user_item her history would contain the item to predict)");
  if (sequential && !net_.sequential())
    throw ConfigError(
        "sampler.builder 'sequence' needs a sequence user tower: model.shared false and user_tower.type gru, "
        "lstm or transformer");
  if (session_parallel_) {
    if (!sequential) throw ConfigError("train.session_parallel needs sampler.builder sequence (and a gru user_tower)");
    if (!net_.streams())
      throw ConfigError(
          "train.session_parallel needs a user tower that carries its state across mini-batches: user_tower.type "
          "gru with user_tower.rnn_kernel own");
    if (G) throw ConfigError("train.session_parallel trains in one process (it is not data-parallel)");
  }
  // The engine of the epochs: the fused engine when the model set one, else LibTorch autograd.
  // Early stopping, schedules, checkpoints and logs below are the same for both.
  TorchEpochs torch_epochs(*this, label_offset, epochs);
  EpochRunner& runner = runner_ ? *runner_ : torch_epochs;
  if (!pending_state_.empty()) {
    runner.load_state(pending_state_);
    pending_state_.clear();
  }
  for (int epoch = start + 1; epoch <= epochs; ++epoch) {
    double lr_now = lr;
    if (cosine)
      lr_now = lr * 0.5 * (1 + std::cos(M_PI * (epoch - 1) / horizon));
    else if (lr_step > 0)
      lr_now = lr * std::pow(gamma, (epoch - 1) / lr_step);
    if (cosine || lr_step > 0) runner.set_lr(lr_now);
    net_.train(true);
    net_.begin_epoch();
    auto t0 = Clock::now();
    const int64_t bytes0 = G ? G->bytes() : 0;
    double mean_loss;
    {
      std::optional<torch::NoGradGuard> ng;  // the fused engine computes its own gradients
      if (runner_) ng.emplace();
      mean_loss = runner.run_epoch(epoch);
    }
    const EpochRunner::EpochStats st = runner.last_stats();
    const int64_t seen = st.examples >= 0 ? st.examples : static_cast<int64_t>(pos.size());
    const double prep_work = st.prep_seconds, prep_wait = st.prep_wait_seconds;
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    rep.last_loss = mean_loss;
    // Embedding health: mean norm and per-dimension variance of item embeddings.
    double mean_norm = 0, var = 0;
    {
      torch::NoGradGuard ng;
      net_.train(false);
      const int64_t m = std::min<int64_t>(n_items_, 4096);  // a sample is enough for the health check
      std::vector<torch::Tensor> parts;
      for (int64_t lo = 0; lo < m; lo += kEmbedBlock)
        parts.push_back(net_.items(torch::arange(lo, std::min(m, lo + kEmbedBlock), torch::kInt64)));
      auto e = torch::cat(parts);
      mean_norm = e.norm(2, 1).mean().item<double>();
      var = e.var(0).mean().item<double>();
    }
    nlohmann::json j = {{"epoch", epoch},
                        {"phase", d.refit_pass ? "refit" : "fit"},
                        {"loss", rep.last_loss},
                        {"lr", lr_now},
                        {"seconds", secs},
                        {"tuples_per_s", seen / std::max(secs, 1e-9)},
                        {"prep_seconds", prep_work},
                        {"prep_wait_seconds", prep_wait},
                        {"emb_mean_norm", mean_norm},
                        {"emb_var", var}};
    std::string xstr;
    if (G) {  // what this rank exchanged for the epoch's training (payload bytes)
      j["dist_bytes"] = G->bytes() - bytes0;
      j["ranks"] = G->size();
      xstr = fmt::format(" {:.1f} MB exchanged", static_cast<double>(G->bytes() - bytes0) / 1e6);
    }
    if (var < 1e-8 || mean_norm < 1e-6) {
      j["collapse"] = true;
      spdlog::warn("epoch {}: item embeddings look collapsed (mean norm {:.3g}, per-dimension variance {:.3g})", epoch,
                   mean_norm, var);
    }
    std::string vstr;
    bool stop = false;
    if (validate_ && (epoch % eval_every == 0 || epoch == epochs)) {
      auto tv = Clock::now();
      double v = validate_();
      const double vsecs = std::chrono::duration<double>(Clock::now() - tv).count();
      j["valid"] = {{rep.valid_metric, v}};
      j["valid_seconds"] = vsecs;
      vstr = fmt::format(" valid {} {:.4f} ({:.2f}s)", rep.valid_metric, v, vsecs);
      if (v > best) {
        best = v, best_epoch = epoch, bad = 0;
        best_state = snapshot(net_);
      } else if (++bad >= patience) {
        stop = true;
      }
    }
    spdlog::info("epoch {}/{} loss {:.4f} {:.0f} tuples/s {:.1f}s{}{} |emb| {:.3f} var {:.2e}", epoch, epochs,
                 rep.last_loss, seen / std::max(secs, 1e-9), secs, xstr, vstr, mean_norm, var);
    if (log) log << j.dump() << "\n" << std::flush;
    rep.epochs_run = epoch;
    if (!d.checkpoint.empty() && writer)
      save_checkpoint(d.checkpoint, epoch, best, best_epoch, bad, best_state, runner);
    if (d.stop_after_epoch > 0 && epoch >= d.stop_after_epoch) break;  // simulated interruption (tests)
    bool go_on = true;
    if (d.on_epoch) {
      EpochInfo info;
      info.epoch = epoch, info.epochs = epochs, info.loss = rep.last_loss, info.seconds = secs;
      info.has_valid = j.contains("valid");
      if (info.has_valid) info.valid = j["valid"][rep.valid_metric].get<double>();
      info.valid_metric = rep.valid_metric;
      info.refit = d.refit_pass;
      go_on = d.on_epoch(info);
    }
    bool halt = !go_on || (d.stop && d.stop->load());
    if (G) {  // a caller's stop on any rank stops every rank after this epoch
      int64_t f = halt ? 1 : 0;
      G->sum(&f, 1, "the agreement to go on");
      halt = f > 0;
    }
    if (halt) {
      rep.interrupted = true;
      spdlog::info("training stopped by the caller after epoch {}", epoch);
      break;
    }
    if (stop) {
      spdlog::info("early stopping: no improvement of {} for {} evaluations; best epoch {}", rep.valid_metric, patience,
                   best_epoch);
      break;
    }
  }
  if (!best_state.empty()) {
    restore(net_, best_state);
    rep.best_epoch = best_epoch;
    rep.best_valid = best;
  } else {
    rep.best_epoch = rep.epochs_run;
  }
  if (log) {  // the epoch the model keeps (siamrec report marks it)
    nlohmann::json end = {{"event", "end"},
                          {"phase", d.refit_pass ? "refit" : "fit"},
                          {"epochs_run", rep.epochs_run},
                          {"chosen_epoch", rep.best_epoch},
                          {"valid_metric", rep.valid_metric},
                          {"interrupted", rep.interrupted}};
    if (!best_state.empty()) end["best_valid"] = best;
    log << end.dump() << "\n" << std::flush;
  }
  net_.train(false);
  rep.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  return rep;
}

}  // namespace siamrec
