// The Siamese model: tower(s) + comparator + loss, fed by a tuple builder and a negative sampler,
// trained by the LibTorch engine (train/trainer.cc). Everything is chosen by name in the config.
#include <spdlog/spdlog.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <random>

#include "config/config.h"
#include "dist/group.h"
#include "data/dataset.h"
#include "data/split.h"
#include "util/rng.h"
#include "scoring/topk.h"
#include "losses/loss.h"
#include "models/model.h"
#include "models/model_file.h"
#include "models/side_source.h"
#include "sampling/builder.h"
#include "train/net.h"
#include "train/fused.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {

class SiameseModel : public Model {
 public:
  std::string type() const override { return "siamese"; }
  bool fitted_on_valid() const override { return fitted_on_valid_; }

  void fit(const FitData& d) override {
    n_users_ = d.ds->n_users();
    n_items_ = d.ds->n_items();
    cfg_ = *d.cfg;
    fitted_on_valid_ = false;
    torch::set_num_threads(std::max(1, d.threads));
    // Validation data for early stopping: the split's, else carved from train.
    Interactions fit_train = *d.train, valid;
    double share = cfg_.real("train.valid_share");
    bool carved = false;
    retrieval_valid_.clear();
    retrieval_labels_.clear();
    if (cfg_.str("sampler.builder") == "label") {
      // Retrieval models learn from categories, not interactions: validation holds out items.
      if (share > 0 && d.validator) return fit_retrieval(d, share);
    } else if (d.valid && d.valid->size() > 0) {
      valid = *d.valid;
    } else if (share > 0) {
      carve_per_user(*d.train, n_users_, share, static_cast<uint64_t>(cfg_.integer("train.seed")), fit_train, valid);
      carved = true;
      spdlog::info("early stopping on {} validation interactions carved from train ({:g} per user, seed {})",
                   valid.size(), share, cfg_.integer("train.seed"));
    }
    TrainReport rep = train_once(d, fit_train, valid, static_cast<int>(cfg_.integer("train.epochs")));
    // Refit for the best epoch count: on all train data after a carved validation set, or on
    // train + the split's validation part (the paper recipe: choose the epochs on valid, retrain on
    // both, test on the same test users). Not for cold-item validation (those items stay unseen).
    const bool split_valid = !carved && valid.size() > 0 && (!d.valid_items || d.valid_items->empty());
    if ((carved || split_valid) && cfg_.flag("train.refit") && rep.best_epoch > 0 && !rep.interrupted) {
      Interactions all = *d.train;
      if (split_valid)
        for (size_t r = 0; r < valid.size(); ++r) all.append_row(valid, r);
      spdlog::info("refit on {} for the best epoch count ({})",
                   split_valid ? "train + the split's validation data" : "all training data", rep.best_epoch);
      FitData d2 = d;
      d2.refit_pass = true;
      d2.checkpoint = d.checkpoint.empty() ? "" : checkpoint_files(d.checkpoint).back();
      rep = train_once(d2, all, Interactions{}, rep.best_epoch);
      fitted_on_valid_ = split_valid;
    }
    if (!carved && valid.size() > 0 && net_->sequential() && !d.valid_is_evaluated) {
      // Sequence models read the latest items at test time, as SASRec does: the validation items
      // (held out after the train items) join each user's input history; they were never trained on.
      Interactions all = *d.train;
      for (size_t r = 0; r < valid.size(); ++r) all.append_row(valid, r);
      Csr ordered = sequences_by_user(all, n_users_);
      net_->set_user_histories(ordered);
      refresh_cache();
      spdlog::info("sequence model: test-time histories include the {} validation items", valid.size());
    }
    report_ = rep;
  }

  // Early stopping of a retrieval model (label builder): a seeded train.valid_share of the labelled
  // training items is held out (never trained on, never a negative); after each validation every
  // one of them queries the others by the item vectors, relevant = the same category, and the
  // metric is the retrieval Recall@K of train.valid_metric. train.refit then retrains on every
  // training item for the best epoch count.
  void fit_retrieval(const FitData& d, double share) {
    if (!cfg_.is_set("train.valid_metric"))
      cfg_.set("train.valid_metric", "recall@1", "retrieval validation (sampler.builder label)");
    if (cfg_.str("train.valid_metric").rfind("recall@", 0) != 0)
      throw ConfigError(fmt::format(
          "train.valid_metric '{}': a retrieval model (sampler.builder label) is validated by retrieval among "
          "held-out training items; set train.valid_metric recall@K (the share of queries with an item of their "
          "category in the top K), or train.valid_share 0 for no validation",
          cfg_.str("train.valid_metric")));
    const auto& genres = d.ds->item_side.genres;
    std::vector<char> held(static_cast<size_t>(n_items_), 0);
    for (const auto* h : {d.heldout_items, d.valid_items})
      if (h)
        for (auto i : *h) held[static_cast<size_t>(i)] = 1;
    std::vector<int32_t> pool;
    for (int32_t i = 0; i < n_items_; ++i)
      if (!held[static_cast<size_t>(i)] && static_cast<size_t>(i) < genres.size() && !genres[i].empty())
        pool.push_back(i);
    std::mt19937_64 rng(mix64(static_cast<uint64_t>(cfg_.integer("train.seed")) ^ 0x7265747276ULL));
    for (size_t k = pool.size(); k > 1; --k) std::swap(pool[k - 1], pool[rng() % k]);
    const size_t n = std::min(pool.size(), static_cast<size_t>(std::llround(share * static_cast<double>(pool.size()))));
    if (n < 2)
      throw ConfigError(
          fmt::format("train.valid_share {:g} holds out {} of the {} labelled training items; "
                      "retrieval validation needs at least 2",
                      share, n, pool.size()));
    retrieval_valid_.assign(pool.begin(), pool.begin() + static_cast<int64_t>(n));
    std::sort(retrieval_valid_.begin(), retrieval_valid_.end());
    for (auto i : retrieval_valid_) retrieval_labels_.push_back(genres[i][0]);
    // The held-out items join the split's held-out ones for this pass.
    std::vector<int32_t> valid_items = d.valid_items ? *d.valid_items : std::vector<int32_t>{};
    valid_items.insert(valid_items.end(), retrieval_valid_.begin(), retrieval_valid_.end());
    FitData d1 = d;
    d1.valid_items = &valid_items;
    spdlog::info("early stopping on retrieval among {} held-out training items ({:g} of {}, seed {}): {}", n, share,
                 pool.size(), cfg_.integer("train.seed"), cfg_.str("train.valid_metric"));
    TrainReport rep = train_once(d1, *d.train, Interactions{}, static_cast<int>(cfg_.integer("train.epochs")));
    retrieval_valid_.clear();
    retrieval_labels_.clear();
    if (cfg_.flag("train.refit") && rep.best_epoch > 0 && !rep.interrupted) {
      spdlog::info("refit on every training item for the best epoch count ({})", rep.best_epoch);
      FitData d2 = d;
      d2.refit_pass = true;
      d2.checkpoint = d.checkpoint.empty() ? "" : checkpoint_files(d.checkpoint).back();
      rep = train_once(d2, *d.train, Interactions{}, rep.best_epoch);
    }
    report_ = rep;
  }

  void score(const int32_t* users, int n, float* out) const override {
    Similarity kind;
    if (net_->comparator()->gemm(&kind)) {
      gemm_scores(user_emb_.data(), users, n, item_emb_.data(), n_items_, dim_, kind, item_sq_.data(), out);
      return;
    }
    torch::NoGradGuard ng;
    auto items = torch::from_blob(const_cast<float*>(item_emb_.data()), {n_items_, dim_}, torch::kFloat32);
    for (int r = 0; r < n; ++r) {
      auto u = torch::from_blob(const_cast<float*>(user_emb_.data()) + static_cast<size_t>(users[r]) * dim_, {1, dim_},
                                torch::kFloat32);
      auto s = net_->comparator()->similarity(u, items).contiguous();
      std::copy_n(s.data_ptr<float>(), n_items_, out + static_cast<size_t>(r) * n_items_);
    }
  }

  void score_history(const std::vector<int32_t>& items, float* out) const override {
    torch::NoGradGuard ng;
    auto u = net_->user_from_history(items).contiguous();
    std::vector<float> uv(u.data_ptr<float>(), u.data_ptr<float>() + dim_);
    score_vector(uv.data(), out);
  }

  void score_pairs(const int32_t* users, const int32_t* items, int64_t n, float* out) const override {
    torch::NoGradGuard ng;
    std::vector<int64_t> ui(users, users + n), ii(items, items + n);
    auto U = torch::from_blob(const_cast<float*>(user_emb_raw_.data()), {n_users_, dim_}, torch::kFloat32);
    auto I = torch::from_blob(const_cast<float*>(item_emb_raw_.data()), {n_items_, dim_}, torch::kFloat32);
    auto s = net_->comparator()
                 ->similarity(U.index_select(0, torch::tensor(ui)), I.index_select(0, torch::tensor(ii)))
                 .contiguous();
    std::copy_n(s.data_ptr<float>(), n, out);
  }

  void update(const UpdateData& u) override {
    const Config& c = *u.fit.cfg;
    const NetLayout old_layout = net_->layout();
    // Sequence user towers need sampler.builder sequence, refused here with the item-item and label
    // builders: a model file keeps neither time order nor labels.
    if (c.str("sampler.builder") != "user_item")
      throw ConfigError(fmt::format(
          "this model cannot be updated: sampler.builder is '{}'; updates train user-item tuples (user_item) only, "
          "because a model file keeps neither the time order item-item windows and sequence towers read nor "
          "labels. Retrain it with `siamrec train` on the whole data",
          c.str("sampler.builder")));
    const bool has_content = !old_layout.items.content_shape.empty();
    const bool reads_side = reads_side_data(c), content_side = reads_side || has_content;
    if (reads_side && !source_.present)
      throw ConfigError(
          "this model cannot be updated: its towers read side data (genres, tags, item text or user features) "
          "that model files before format 7 do not keep, so new items could not be read with the same token ids. "
          "Retrain it once with `siamrec train`; models trained since then can be updated");
    const int32_t old_items = n_items_, old_users = n_users_;
    std::shared_ptr<SiameseNet> old = net_;
    // The old model's vectors: neighbours of new entities whose side has no table of its own.
    const std::vector<float> old_item_vecs = item_emb_raw_, old_user_vecs = user_emb_raw_;
    const int64_t old_dim = dim_;
    // The grown dataset with side data: the entities the model knew keep theirs (from the model),
    // new ones bring theirs (from the new data), read with the model's vocabularies.
    Dataset grown = *u.fit.ds;
    if (source_.present || has_content) {
      static const Dataset none;
      GrownSide gs = grow_side(source_, old_layout.items.content, old_layout.items.content_shape, u.item_map,
                               u.user_map, u.fresh ? *u.fresh : none, u.source, grown);
      if (gs.new_items > 0 && content_side) spdlog::info("update: {}", gs.describe());
      if (gs.new_items_without_side > 0 && content_side)
        spdlog::warn("update: {} new items have no side data in '{}': the content towers see them empty",
                     gs.new_items_without_side, u.source);
    }
    FitData fd = u.fit;
    fd.ds = &grown;
    n_users_ = grown.n_users();
    n_items_ = grown.n_items();
    cfg_ = c;
    fitted_on_valid_ = false;
    torch::set_num_threads(std::max(1, u.fit.threads));
    const bool joint = old_layout.user_anchor && old_layout.shared;
    // The tower owning a grown table, and whether it is a user tower: "tower.weight",
    // "user_tower.weight", "tower.part1.weight", ...
    auto owner = [&](const std::string& key) {
      const bool user = key.rfind("user_tower.", 0) == 0;
      const std::string sec = user ? "user_tower" : "tower";
      const std::string rest = key.substr(sec.size() + 1);
      if (rest.rfind("part", 0) == 0) {
        const size_t k = std::stoul(rest.substr(4, rest.find('.') - 4));
        return std::tuple{c.strs(sec + ".parts").at(k), user, true};
      }
      return std::tuple{c.str(sec + ".type"), user, false};
    };
    // The new row of every old row of a table: entity rows (id, gcn) move with their ids; token rows
    // (bag: [items | genres, tags or user features]) too, the tokens after the items shift by the
    // new items.
    auto rows_of = [&](const std::string& key, int64_t old_rows) {
      auto [type, user, part] = owner(key);
      std::vector<int64_t> rows;
      if (type == "id" || type == "gcn") {
        if (user) {
          for (int32_t v = 0; v < old_users; ++v) rows.push_back(u.user_map[v]);
        } else {
          for (int32_t i = 0; i < old_items; ++i) rows.push_back(u.item_map[i]);
          if (joint)  // users after items in the joint space
            for (int32_t v = 0; v < old_users; ++v) rows.push_back(n_items_ + u.user_map[v]);
        }
      } else if (type == "bag") {
        for (int64_t t = 0; t < old_rows; ++t) rows.push_back(t < old_items ? u.item_map[t] : t + n_items_ - old_items);
      } else {
        throw Error(fmt::format("internal: cannot grow parameter '{}' of a '{}' tower", key, type));
      }
      return rows;
    };
    auto start = [&](SiameseNet& fresh) {
      torch::NoGradGuard ng;
      auto olds = old->named_parameters();
      for (auto& p : fresh.named_parameters()) {
        const torch::Tensor* o = olds.find(p.key());
        if (!o) throw Error(fmt::format("internal: parameter '{}' is new in the grown network", p.key()));
        if (o->sizes() == p.value().sizes()) {
          p.value().copy_(*o);
          continue;
        }
        auto rows = rows_of(p.key(), o->size(0));
        if (static_cast<int64_t>(rows.size()) != o->size(0) || o->dim() != 2 || p.value().size(1) != o->size(1))
          throw Error(
              fmt::format("internal: parameter '{}' has {} rows, expected {}", p.key(), o->size(0), rows.size()));
        auto idx = torch::tensor(rows, torch::kInt64);
        // New rows of a fusion's id part or a bag's own-id tokens start at zero unless update.init is
        // model: a new item is then first what its content says (a cold item's vector, for fusion).
        auto [type, user, part] = owner(p.key());
        if (u.init != "model" && (part || type == "bag")) p.value().zero_();
        p.value().index_copy_(0, idx, *o);
      }
      if (u.init == "mean" && old_layout.user_anchor)
        init_new_rows(fresh, u, old_items, old_users, joint, old_item_vecs, old_user_vecs, old_dim);
    };
    TrainReport rep = train_once(fd, *u.fit.train, Interactions{}, u.epochs, u.fit.train_by_user, start, u.lr_scale,
                                 source_.present ? &source_.tokenizer : nullptr);
    report_ = rep;
  }

  // update.init mean: a new item starts at the mean of its known users' vectors, a new user at the
  // mean of her known items' vectors ("known": in the model before the update); without any, the
  // model's init. Rows are written in tables of entity rows (id and gcn towers, not inside a
  // fusion); the neighbours' vectors are their rows in such a table, else the old model's vectors.
  void init_new_rows(SiameseNet& net, const UpdateData& u, int32_t old_items, int32_t old_users, bool joint,
                     const std::vector<float>& old_item_vecs, const std::vector<float>& old_user_vecs,
                     int64_t old_dim) {
    const Config& c = *u.fit.cfg;
    const Csr& known = *u.fit.train_by_user;
    const int32_t nu = static_cast<int32_t>(known.rows()), ni = static_cast<int32_t>(n_items_);
    auto entity_table = [](const std::string& type) { return type == "id" || type == "gcn"; };
    auto params = net.named_parameters();
    torch::Tensor items, users;
    if (entity_table(c.str("tower.type"))) items = params["tower.weight"];
    if (joint && items.defined()) users = items.narrow(0, ni, nu);
    if (!joint && entity_table(c.str("user_tower.type"))) users = params["user_tower.weight"];
    if (!items.defined() && !users.defined()) return;
    const int64_t dim = items.defined() ? items.size(1) : users.size(1);
    std::vector<int32_t> old_user(nu, -1), old_item(ni, -1);
    for (int32_t v = 0; v < old_users; ++v) old_user[u.user_map[v]] = v;
    for (int32_t i = 0; i < old_items; ++i) old_item[u.item_map[i]] = i;
    // A known neighbour's vector (nullptr when its space has another width than the table).
    auto item_vec = [&](int32_t i) -> const float* {
      if (items.defined()) return items.data_ptr<float>() + static_cast<int64_t>(i) * dim;
      return old_dim == dim ? old_item_vecs.data() + static_cast<int64_t>(old_item[i]) * dim : nullptr;
    };
    auto user_vec = [&](int32_t v) -> const float* {
      if (users.defined()) return users.data_ptr<float>() + static_cast<int64_t>(v) * users.stride(0);
      return old_dim == dim ? old_user_vecs.data() + static_cast<int64_t>(old_user[v]) * dim : nullptr;
    };
    // Both sums read rows as they were before this function (old rows are final; new rows are
    // written only after both passes).
    std::vector<double> isum(static_cast<size_t>(ni) * dim, 0.0), usum(static_cast<size_t>(nu) * dim, 0.0);
    std::vector<int64_t> icnt(ni, 0), ucnt(nu, 0);
    for (int32_t v = 0; v < nu; ++v)
      for (int64_t p = known.begin(v); p < known.end(v); ++p) {
        const int32_t i = known.indices[p];
        if (items.defined() && old_item[i] < 0 && old_user[v] >= 0)
          if (const float* x = user_vec(v)) {
            for (int64_t k = 0; k < dim; ++k) isum[static_cast<size_t>(i) * dim + k] += x[k];
            ++icnt[i];
          }
        if (users.defined() && old_user[v] < 0 && old_item[i] >= 0)
          if (const float* x = item_vec(i)) {
            for (int64_t k = 0; k < dim; ++k) usum[static_cast<size_t>(v) * dim + k] += x[k];
            ++ucnt[v];
          }
      }
    for (int32_t i = 0; i < ni; ++i)
      if (icnt[i]) {
        float* row = items.data_ptr<float>() + static_cast<int64_t>(i) * dim;
        for (int64_t k = 0; k < dim; ++k) row[k] = static_cast<float>(isum[static_cast<size_t>(i) * dim + k] / icnt[i]);
      }
    for (int32_t v = 0; v < nu; ++v)
      if (ucnt[v]) {
        float* row = users.data_ptr<float>() + static_cast<int64_t>(v) * users.stride(0);
        for (int64_t k = 0; k < dim; ++k) row[k] = static_cast<float>(usum[static_cast<size_t>(v) * dim + k] / ucnt[v]);
      }
  }

  float rating_offset() const override { return offset_; }
  bool retrieval_kind(Similarity* kind) const override { return net_->comparator()->gemm(kind); }
  const float* item_embeddings(int* dim) const override { return *dim = static_cast<int>(dim_), item_emb_raw_.data(); }
  const float* user_embeddings(int* dim) const override { return *dim = static_cast<int>(dim_), user_emb_raw_.data(); }

  bool similar_items(int32_t item, int k, std::vector<std::pair<int32_t, float>>& out) const override {
    std::vector<float> s(n_items_);
    score_vector(item_emb_raw_.data() + static_cast<size_t>(item) * dim_, s.data(), /*raw_query=*/true);
    s[item] = -INFINITY;
    std::vector<int32_t> top(k);
    int nt = topk_row(s.data(), n_items_, k, top.data());
    out.clear();
    for (int j = 0; j < nt; ++j) out.emplace_back(top[j], s[top[j]]);
    return true;
  }

  void save(BinWriter& w) const override {
    w.put_str(cfg_.to_yaml());
    net_->layout().save(w);
    w.put_vec(hist_.indptr);
    w.put_vec(hist_.indices);
    w.put<float>(offset_);
    write_state(w, *net_);
    // The embedding caches: loading then needs no forward pass (content towers over 70,000
    // images took 20 s to re-embed).
    w.put_vec(item_emb_raw_);
    w.put_vec(user_emb_raw_);
    source_.save(w);
  }

  void load(BinReader& r) override {
    cfg_ = Config::from_yaml_text(r.get_str(), "model file config");
    upgrade_model_config(cfg_, r.version());
    NetLayout layout;
    layout.load(r);
    r.get_vec(hist_.indptr);
    r.get_vec(hist_.indices);
    if (hist_.indptr.size() != static_cast<size_t>(n_users_) + 1 ||
        hist_.indptr.back() != static_cast<int64_t>(hist_.indices.size()))
      throw Error("model file is malformed (siamese user histories)");
    for (auto i : hist_.indices)
      if (i < 0 || i >= n_items_) throw Error("model file is malformed (siamese history item out of range)");
    offset_ = r.get<float>();
    net_ = std::make_shared<SiameseNet>(cfg_, layout);
    net_->set_history(&hist_);
    read_state(r, *net_, "model file");
    net_->train(false);
    if (r.at_end()) {  // files written before the caches were stored
      refresh_cache();
      return;
    }
    dim_ = net_->dim();
    r.get_vec(item_emb_raw_);
    r.get_vec(user_emb_raw_);
    if (item_emb_raw_.size() != static_cast<size_t>(n_items_ * dim_) ||
        user_emb_raw_.size() != static_cast<size_t>(n_users_ * dim_))
      throw Error("model file is malformed (embedding caches do not match the network)");
    source_ = SideSource{};
    if (r.version() >= 7) source_.load(r, n_items_, n_users_);
    derive_cache();
  }

 private:
  // One training pass. `known` (default: the train interactions) are each user's known items
  // (histories, known positives, validation exclusions); `start`, when set, fills the freshly
  // built network before training (update: the old weights moved into the grown tables).
  TrainReport train_once(const FitData& d, const Interactions& train, const Interactions& valid, int epochs,
                         const Csr* known = nullptr, const std::function<void(SiameseNet&)>& start = {},
                         double lr_scale = 1.0, const std::string* tokenizer = nullptr) {
    Config c = cfg_;
    c.set("train.epochs", std::to_string(epochs), "fit");
    if (lr_scale != 1.0) c.set("train.lr", fmt::format("{}", c.real("train.lr") * lr_scale), "update.lr_scale");
    Csr by_user = known ? *known : Csr::from_interactions(train, n_users_, false);
    hist_.indptr = by_user.indptr;
    hist_.indices = by_user.indices;
    auto builder = make_builder(c.str("sampler.builder"));
    heldout_mask_.clear();  // stays empty when nothing is held out: heldout() then returns at once
    for (const auto* held : {d.heldout_items, d.valid_items})
      if (held && !held->empty()) {
        heldout_mask_.resize(n_items_, 0);
        for (auto i : *held) heldout_mask_[i] = 1;
      }
    builder->set_heldout(&heldout_mask_);
    builder->build(*d.ds, train, by_user, c);
    const std::string& st = c.str("sampler.type");
    const std::string negs = st == "proxies"
                                 ? fmt::format("proxies (one vector per label, {} labels)", builder->n_labels())
                             : st == "in_batch" ? std::string("in_batch (the other positives of the batch)")
                                                : fmt::format("{} x{}", st, c.integer("sampler.negatives"));
    spdlog::info("tuples: {} positives from {}; negatives: {}", builder->positives().size(), builder->describe(), negs);
    // Sequence builders already hold each user's items in time order (nullptr for pair builders).
    NetLayout layout = build_layout(c, *d.ds, by_user, builder->anchor_is_user(), builder->sequences(), tokenizer);
    source_ = SideSource::of(*d.ds, layout.tokenizer);
    if (!builder->anchor_is_user()) {  // item-anchored: warm = items the builder trains on
      auto& warm = layout.items.warm;
      for (const auto& t : builder->positives())
        if (t.a >= 0 && t.a < static_cast<int32_t>(warm.size()) && t.p < static_cast<int32_t>(warm.size()))
          warm[t.a] = warm[t.p] = 1;
    }
    torch::manual_seed(static_cast<uint64_t>(c.integer("train.seed")));
    net_ = std::make_shared<SiameseNet>(c, layout);
    net_->set_history(&hist_);
    if (start) start(*net_);
    std::vector<int64_t> pop(n_items_, 0);
    for (auto i : train.item) ++pop[i];
    auto sampler = make_sampler(c.str("sampler.type"));
    sampler->init(n_items_, pop, c);
    auto loss = make_loss(LossSpec::from_config(c));
    const float kept_offset = offset_;
    offset_ = 0;
    if (loss->uses_labels() && !train.has_rating())
      throw ConfigError("loss.type 'mse' needs ratings, but the training data has none");
    if (loss->uses_labels() && start) {
      offset_ = kept_offset;  // an update keeps the rating offset its weights were trained around
    } else if (loss->uses_labels()) {
      if (!train.has_rating()) throw ConfigError("loss.type 'mse' needs ratings, but the training data has none");
      double s = 0;
      for (float r : train.rating) s += r;
      offset_ = static_cast<float>(s / train.size());
    }
    std::function<double()> validate;
    if (!retrieval_valid_.empty() && d.validator) {
      Similarity kind;
      if (!net_->comparator()->gemm(&kind))
        throw ConfigError(
            "retrieval validation (sampler.builder label, train.valid_share > 0) needs a dot, cosine "
            "or euclidean comparator; set train.valid_share 0");
      validate = [this, &d, kind, metric = c.str("train.valid_metric")]() {
        // Only the held-out items are embedded (Fashion-MNIST: 6,000 of 70,000 images).
        net_->train(false);
        const int64_t n = static_cast<int64_t>(retrieval_valid_.size()), dim = net_->dim();
        std::vector<float> vecs;
        embed(false, n, retrieval_valid_.data(), vecs);
        std::vector<int32_t> rows(static_cast<size_t>(n));
        std::iota(rows.begin(), rows.end(), 0);
        ValidationRequest q;
        q.metric = metric;
        q.retrieval_set = &rows;
        q.labels = &retrieval_labels_;
        q.item_vectors = vecs.data();
        q.dim = static_cast<int>(dim);
        q.similarity = kind;
        q.n_users = n_users_, q.n_items = static_cast<int32_t>(n);
        q.threads = d.threads;
        double v = d.validator(q);
        net_->train(true);
        return v;
      };
    }
    Csr valid_excl = by_user;
    std::vector<int32_t> valid_cands;
    if (valid.size() > 0 && !loss->uses_labels() && d.validator) {
      // Cold validation items: rank within them, as the test ranks within the held-out items.
      if (d.valid_items && !d.valid_items->empty()) valid_cands = *d.valid_items;
      validate = [this, &valid, &valid_excl, &valid_cands, &d, metric = c.str("train.valid_metric"),
                  vusers = c.integer("train.valid_users"), vseed = static_cast<uint64_t>(c.integer("train.seed"))]() {
        net_->train(false);
        refresh_cache();
        BlockScorer scorer = [this](const int32_t* u, int n, float* out) { score(u, n, out); };
        ValidationRequest q;
        q.scorer = &scorer;
        q.valid = &valid;
        q.exclude = &valid_excl;
        q.candidate_items = valid_cands.empty() ? nullptr : &valid_cands;
        q.metric = metric;
        q.candidates = d.valid_candidates;
        q.max_users = vusers;
        q.seed = vseed;
        q.n_users = n_users_, q.n_items = n_items_;
        q.threads = d.threads;
        double v = d.validator(q);
        net_->train(true);
        return v;
      };
    }
    Trainer t(*net_, c, *builder, *sampler, *loss, validate);
    // Engine: fused whenever the model allows it (auto), or as configured.
    const std::string& engine = c.str("train.engine");
    std::string why = fused_unsupported(c);
    if (engine == "fused" && !why.empty())
      throw ConfigError("train.engine 'fused' cannot train this model: " + why + "; use train.engine auto or torch");
    std::unique_ptr<FusedEngine> fused;
    if (engine == "fused" || (engine == "auto" && why.empty())) {
      fused = std::make_unique<FusedEngine>(fused_spec(c, *net_, d.threads, offset_), *builder, *sampler);
      t.set_runner(fused.get());
      std::string mode = c.flag("train.deterministic") ? ", deterministic" : ", Hogwild";
      if (dist::Group* G = dist::active())
        mode = c.str("train.update") == "example"
                   ? fmt::format(" per rank; {} ranks, local SGD: touched rows merged {}", G->size(),
                                 c.integer("dist.sync_every") > 0
                                     ? fmt::format("every {} examples", c.integer("dist.sync_every"))
                                     : std::string("10 times per epoch"))
                   : fmt::format(" per rank; {} ranks, synchronous mini-batches of {} x {}", G->size(),
                                 c.integer("train.batch_size"), G->size());
      if (fused->replicated_rows() > 0)
        mode += fmt::format("; each thread a replica of {} hot item rows, merged every {} examples",
                            fused->replicated_rows(), fused->merge_interval());
      spdlog::info("engine: fused ({} threads{})", std::max(1, d.threads), mode);
    } else {
      if (c.str("train.update") == "example")
        throw ConfigError("train.update 'example' needs the fused engine, which cannot train this model" +
                          (why.empty() ? std::string(" with train.engine torch") : ": " + why));
      spdlog::info("engine: torch{}{}", engine == "auto" ? " (fused cannot: " + why + ")" : "",
                   dist::active() ? fmt::format("; data-parallel over {} ranks, mini-batches of {} x {}", dist::size(),
                                                c.integer("train.batch_size"), dist::size())
                                  : "");
    }
    TrainReport rep = t.run(d, offset_);
    refresh_cache();
    spdlog::info(
        "trained {} epochs in {:.1f}s{}", rep.epochs_run, rep.seconds,
        validate ? fmt::format("; best {} {:.4f} at epoch {}", rep.valid_metric, rep.best_valid, rep.best_epoch) : "");
    return rep;
  }

  // Vectors of n users or items (ids[0..n), or 0..n-1 when ids is null) into out (n x dim), in
  // blocks that bound the activations of CNN towers (kEmbedBlock, train/net.h). No gradients; the
  // caller sets eval mode.
  void embed(bool users, int64_t n, const int32_t* ids, std::vector<float>& out) const {
    torch::NoGradGuard ng;
    const int64_t dim = net_->dim();
    out.resize(static_cast<size_t>(n * dim));
    for (int64_t lo = 0; lo < n; lo += kEmbedBlock) {
      const int64_t hi = std::min(n, lo + kEmbedBlock);
      auto block = ids ? torch::tensor(std::vector<int64_t>(ids + lo, ids + hi), torch::kInt64)
                       : torch::arange(lo, hi, torch::kInt64);
      auto e = (users ? net_->users(block) : net_->items(block)).contiguous();
      std::copy_n(e.data_ptr<float>(), (hi - lo) * dim, out.data() + lo * dim);
    }
  }

  void refresh_cache() {
    torch::NoGradGuard ng;
    bool was = net_->is_training();
    net_->train(false);
    dim_ = net_->dim();
    embed(false, n_items_, nullptr, item_emb_raw_);
    embed(true, n_users_, nullptr, user_emb_raw_);
    derive_cache();
    net_->train(was);
  }

  // Scoring copies of the raw embeddings (unit rows for cosine) and item squared norms.
  void derive_cache() {
    item_emb_ = item_emb_raw_;
    user_emb_ = user_emb_raw_;
    Similarity kind = Similarity::Dot;
    net_->comparator()->gemm(&kind);
    if (kind == Similarity::Cosine) {
      normalize_rows(item_emb_.data(), n_items_, dim_);
      normalize_rows(user_emb_.data(), n_users_, dim_);
    }
    item_sq_.assign(n_items_, 0.0f);
    for (int64_t i = 0; i < n_items_; ++i)
      for (int64_t k = 0; k < dim_; ++k) item_sq_[i] += item_emb_[i * dim_ + k] * item_emb_[i * dim_ + k];
  }

  // Scores every item for one query vector (a user vector, or an item's raw embedding).
  void score_vector(const float* q, float* out, bool raw_query = false) const {
    Similarity kind;
    if (net_->comparator()->gemm(&kind)) {
      std::vector<float> v(q, q + dim_);
      if (kind == Similarity::Cosine) normalize_rows(v.data(), 1, dim_);
      int32_t zero = 0;
      gemm_scores(v.data(), &zero, 1, item_emb_.data(), n_items_, dim_, kind, item_sq_.data(), out);
      return;
    }
    torch::NoGradGuard ng;
    auto items = torch::from_blob(const_cast<float*>(item_emb_raw_.data()), {n_items_, dim_}, torch::kFloat32);
    auto u = torch::from_blob(const_cast<float*>(q), {1, dim_}, torch::kFloat32);
    auto s = net_->comparator()->similarity(u, items).contiguous();
    std::copy_n(s.data_ptr<float>(), n_items_, out);
  }

  Config cfg_;
  Csr hist_;
  std::shared_ptr<SiameseNet> net_;
  float offset_ = 0;
  int64_t dim_ = 0;
  std::vector<float> item_emb_raw_, user_emb_raw_, item_emb_, user_emb_, item_sq_;
  TrainReport report_;
  bool fitted_on_valid_ = false;  // the last fit refit on train + the split's validation part
  std::vector<char> heldout_mask_;
  // The side data the entities were encoded from, for updates (model file format 7).
  SideSource source_;
  // Retrieval validation of label-builder models: the held-out items and their categories.
  std::vector<int32_t> retrieval_valid_, retrieval_labels_;
};

SIAMREC_REGISTER_MODEL("siamese",
                       "Siamese network: tower(s) + comparator + loss, trained with a tuple builder and sampler",
                       SiameseModel);

}  // namespace siamrec
