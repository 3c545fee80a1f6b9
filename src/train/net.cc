#include "train/net.h"

#include <torch/autograd.h>

#include <algorithm>
#include <map>
#include <set>

#include "config/config.h"
#include "content/item_text.h"
#include "data/dataset.h"
#include "util/error.h"
#include "train/fused.h"
#include "util/io.h"

namespace siamrec {

void NetLayout::save(BinWriter& w) const {
  w.put<uint8_t>(user_anchor);
  w.put<uint8_t>(shared);
  w.put<int64_t>(n_users);
  w.put<int64_t>(n_items);
  items.save(w);
  users.save(w);
}
void NetLayout::load(BinReader& r) {
  user_anchor = r.get<uint8_t>();
  shared = r.get<uint8_t>();
  n_users = r.get<int64_t>();
  n_items = r.get<int64_t>();
  items.load(r);
  users.load(r);
}

namespace {

// Item bag tokens: sources among self (own id), genres, tags; token space = [items | genres | tags].
struct Vocab {
  int64_t n_items = 0, n_genres = 0;
  std::map<std::string, int64_t> tags;
  int64_t size() const { return n_items + n_genres + static_cast<int64_t>(tags.size()); }
};

Vocab make_vocab(const Dataset& ds) {
  Vocab v;
  v.n_items = ds.n_items();
  v.n_genres = static_cast<int64_t>(ds.item_side.genre_vocab.size());
  for (auto& t : ds.item_side.tags)
    for (auto& s : t) v.tags.emplace(s, 0);
  int64_t k = v.n_items + v.n_genres;
  for (auto& [s, id] : v.tags) id = k++;
  return v;
}

void item_bag(const Dataset& ds, const Vocab& v, int32_t i, const std::vector<std::string>& src,
              std::vector<int64_t>& out) {
  for (auto& s : src) {
    if (s == "self") out.push_back(i);
    if (s == "genres" && static_cast<size_t>(i) < ds.item_side.genres.size())
      for (auto g : ds.item_side.genres[i]) out.push_back(v.n_items + g);
    if (s == "tags" && static_cast<size_t>(i) < ds.item_side.tags.size())
      for (auto& t : ds.item_side.tags[i]) out.push_back(v.tags.at(t));
  }
}

std::vector<float> item_dense(const Dataset& ds, int64_t& dim) {
  dim = static_cast<int64_t>(ds.item_side.genre_vocab.size());
  std::vector<float> d(static_cast<size_t>(ds.n_items()) * dim, 0.0f);
  if (dim == 0) return d;
  for (int32_t i = 0; i < ds.n_items() && static_cast<size_t>(i) < ds.item_side.genres.size(); ++i)
    for (auto g : ds.item_side.genres[i]) d[static_cast<size_t>(i) * dim + g] = 1.0f;
  return d;
}

std::vector<float> user_dense(const Dataset& ds, int64_t& dim) {
  std::map<std::string, int64_t> vocab;
  for (auto& f : ds.user_side.features)
    for (auto& s : f) vocab.emplace(s, 0);
  int64_t k = 0;
  for (auto& [s, id] : vocab) id = k++;
  dim = k;
  std::vector<float> d(static_cast<size_t>(ds.n_users()) * dim, 0.0f);
  for (int32_t u = 0; u < ds.n_users() && static_cast<size_t>(u) < ds.user_side.features.size(); ++u)
    for (auto& s : ds.user_side.features[u]) d[static_cast<size_t>(u) * dim + vocab[s]] = 1.0f;
  return d;
}

void check_sources(const std::vector<std::string>& src, const std::set<std::string>& allowed, const std::string& key) {
  for (auto& s : src)
    if (!allowed.count(s))
      throw ConfigError(
          fmt::format("config key '{}': '{}' is not allowed; allowed: {}", key, s, fmt::join(allowed, ", ")));
}

}  // namespace

bool is_sequence_tower(const std::string& type) { return type == "gru" || type == "lstm" || type == "transformer"; }

void set_user_bags(EntityFeatures& us, const Csr& h) {
  us.bag_ptr.assign(1, 0);
  us.bag_tok.clear();
  for (int64_t u = 0; u < us.n; ++u) {
    if (u < h.rows())
      for (int64_t p = h.begin(static_cast<int32_t>(u)); p < h.end(static_cast<int32_t>(u)); ++p)
        us.bag_tok.push_back(h.indices[p]);
    us.bag_ptr.push_back(static_cast<int64_t>(us.bag_tok.size()));
  }
}

NetLayout build_layout(const Config& c, const Dataset& ds, const Csr& hist, bool user_anchor, const Csr* ordered,
                       const std::string* tokenizer) {
  NetLayout L;
  L.user_anchor = user_anchor;
  L.shared = c.flag("model.shared");
  L.n_users = ds.n_users();
  L.n_items = ds.n_items();
  auto isrc = c.strs("tower.bag");
  check_sources(isrc, {"self", "genres", "tags"}, "tower.bag");
  Vocab v = make_vocab(ds);
  const bool joint = user_anchor && L.shared;
  EntityFeatures& it = L.items;
  it.n = joint ? L.n_items + L.n_users : L.n_items;
  it.bag_vocab = v.size();
  std::vector<int64_t> bag;
  for (int32_t i = 0; i < ds.n_items(); ++i) {
    bag.clear();
    item_bag(ds, v, i, isrc, bag);
    it.bag_tok.insert(it.bag_tok.end(), bag.begin(), bag.end());
    it.bag_ptr.push_back(static_cast<int64_t>(it.bag_tok.size()));
  }
  int64_t idim = 0, udim = 0;
  std::vector<float> idense = item_dense(ds, idim), udense;
  it.description = fmt::format("items: bag of {}", fmt::join(isrc, "+"));
  if (joint) {
    // Users after items; a user's bag is her training items (item tokens), dense = [0 | user features].
    for (int32_t u = 0; u < ds.n_users(); ++u) {
      if (u < hist.rows())
        for (int64_t p = hist.begin(u); p < hist.end(u); ++p) it.bag_tok.push_back(hist.indices[p]);
      it.bag_ptr.push_back(static_cast<int64_t>(it.bag_tok.size()));
    }
    udense = user_dense(ds, udim);
    it.dense_dim = idim + udim;
    it.dense.assign(static_cast<size_t>(it.n * it.dense_dim), 0.0f);
    for (int64_t i = 0; i < L.n_items; ++i)
      std::copy_n(idense.data() + i * idim, idim, it.dense.data() + i * it.dense_dim);
    for (int64_t u = 0; u < L.n_users; ++u)
      std::copy_n(udense.data() + u * udim, udim, it.dense.data() + (L.n_items + u) * it.dense_dim + idim);
    it.description += "; users (joint space, after items): bag of history items";
  } else {
    it.dense = std::move(idense);
    it.dense_dim = idim;
  }
  auto parts = c.strs("tower.parts");
  auto uses = [&](const std::string& t) {
    return c.str("tower.type") == t || (c.str("tower.type") == "fusion" && std::count(parts.begin(), parts.end(), t));
  };
  // Warm entities have training interactions; fusion towers zero the id part of cold ones.
  it.warm.assign(static_cast<size_t>(it.n), 0);
  for (auto i : hist.indices) it.warm[i] = 1;
  if (joint)
    for (int32_t u = 0; u < ds.n_users() && u < hist.rows(); ++u) it.warm[L.n_items + u] = hist.degree(u) > 0;
  if (uses("text_cnn") || uses("gru") || uses("lstm") || uses("transformer")) {
    if (joint)
      throw ConfigError(
          "text towers (text_cnn, gru, lstm, transformer as tower.type) encode item text; users have none: set "
          "model.shared false with a user_tower (id or bag of history)");
    Tokenizer kept;
    if (tokenizer) kept = Tokenizer::load(*tokenizer, "the model's text vocabulary");
    ItemText t = item_text(ds, c, tokenizer ? &kept : nullptr);
    L.tokenizer = t.tokenizer.save();
    it.text_ptr = std::move(t.ptr);
    it.text_tok = std::move(t.tok);
    it.text_vocab = t.vocab();
    it.description +=
        fmt::format("; text: {} ({} tokens in the vocabulary)", fmt::join(c.strs("tower.text"), "+"), it.text_vocab);
  }
  if (uses("image_cnn") || uses("audio_cnn")) {
    const auto& src = ds.item_side.content;
    if (src.empty())
      throw ConfigError("tower.type image_cnn/audio_cnn needs item content (images or spectrograms); dataset '" +
                        ds.name + "' has none");
    int64_t per = 1;
    for (auto d : ds.item_side.content_shape) per *= d;
    it.content_shape = ds.item_side.content_shape;
    it.content.assign(static_cast<size_t>(it.n * per), 0.0f);  // users (joint space) have none
    std::copy(src.begin(), src.end(), it.content.begin());
    it.description += fmt::format("; content {}", fmt::join(it.content_shape, "x"));
  }
  if (uses("gcn")) {
    if (!joint)
      throw ConfigError(
          "tower.type 'gcn' needs the user-item graph in one joint space: use sampler.builder user_item "
          "with model.shared true");
    // Bipartite graph of the train interactions: item i <-> user node n_items + u (duplicates once).
    std::vector<std::vector<int64_t>> adj(static_cast<size_t>(it.n));
    for (int32_t u = 0; u < ds.n_users() && u < hist.rows(); ++u) {
      std::vector<int64_t> items(hist.indices.begin() + hist.begin(u), hist.indices.begin() + hist.end(u));
      std::sort(items.begin(), items.end());
      items.erase(std::unique(items.begin(), items.end()), items.end());
      for (auto i : items) {
        adj[static_cast<size_t>(L.n_items + u)].push_back(i);
        adj[static_cast<size_t>(i)].push_back(L.n_items + u);
      }
    }
    it.graph_ptr.assign(1, 0);
    for (auto& a : adj) {
      it.graph_idx.insert(it.graph_idx.end(), a.begin(), a.end());
      it.graph_ptr.push_back(static_cast<int64_t>(it.graph_idx.size()));
    }
    it.description += fmt::format("; graph: {} user-item edges", it.graph_idx.size() / 2);
  }
  if (user_anchor && !L.shared) {
    EntityFeatures& us = L.users;
    auto usrc = c.strs("user_tower.bag");
    check_sources(usrc, {"history", "features"}, "user_tower.bag");
    if (is_sequence_tower(c.str("user_tower.type"))) {
      // A causal encoder over her items in time order, embedded by the shared item tower.
      if (usrc != std::vector<std::string>{"history"})
        throw ConfigError(
            fmt::format("user_tower.type '{}' reads the user's history only: set user_tower.bag to [history]",
                        c.str("user_tower.type")));
      if (!ordered)
        throw ConfigError(
            fmt::format("user_tower.type '{}' reads a history causally and needs sampler.builder sequence "
                        "(with user_item her history would contain the item to predict)",
                        c.str("user_tower.type")));
      us.n = L.n_users;
      us.bag_vocab = L.n_items;
      set_user_bags(us, *ordered);
      us.description = "users: latest history items in time order (sequence encoder over the shared item tower)";
      return L;
    }
    us.n = L.n_users;
    std::map<std::string, int64_t> fv;
    for (auto& f : ds.user_side.features)
      for (auto& s : f) fv.emplace(s, 0);
    int64_t k = L.n_items;
    for (auto& [s, id] : fv) id = k++;
    us.bag_vocab = k;
    for (int32_t u = 0; u < ds.n_users(); ++u) {
      for (auto& s : usrc) {
        if (s == "history" && u < hist.rows())
          for (int64_t p = hist.begin(u); p < hist.end(u); ++p) us.bag_tok.push_back(hist.indices[p]);
        if (s == "features" && static_cast<size_t>(u) < ds.user_side.features.size())
          for (auto& f : ds.user_side.features[u]) us.bag_tok.push_back(fv[f]);
      }
      us.bag_ptr.push_back(static_cast<int64_t>(us.bag_tok.size()));
    }
    us.dense = user_dense(ds, udim);
    us.dense_dim = udim;
    us.description = fmt::format("users: bag of {}", fmt::join(usrc, "+"));
  }
  return L;
}

SiameseNet::SiameseNet(const Config& c, const NetLayout& layout) : layout_(layout) {
  dim_ = c.integer("tower.dim");
  item_tower_ = register_module("tower", make_tower(TowerSpec::from_config(c, "tower", &layout_.items)));
  if (layout_.user_anchor && !layout_.shared) {
    auto us = TowerSpec::from_config(c, "user_tower", &layout_.users);
    us.item_tower = item_tower_.get();  // sequence encoders embed history items with the shared item tower
    user_tower_ = register_module("user_tower", make_tower(us));
  }
  ComparatorSpec cs;
  cs.type = c.str("comparator.type");
  cs.dim = dim_;
  for (auto h : c.ints("comparator.hidden")) cs.hidden.push_back(h);
  comp_ = register_module("comparator", make_comparator(cs));
}

torch::Tensor SiameseNet::items(const torch::Tensor& ids) { return item_tower_->forward(ids); }

torch::Tensor SiameseNet::users(const torch::Tensor& ids) {
  if (layout_.user_anchor) {
    if (layout_.shared) return item_tower_->forward(ids + layout_.n_items);
    return user_tower_->forward(ids);
  }
  // Item-anchored: centroid of history items.
  if (!history_) throw Error("internal: user histories are not set");
  auto idc = ids.contiguous();
  const int64_t* id = idc.data_ptr<int64_t>();
  std::vector<int64_t> tok, off;
  for (int64_t k = 0; k < idc.numel(); ++k) {
    off.push_back(static_cast<int64_t>(tok.size()));
    for (int64_t p = history_->begin(static_cast<int32_t>(id[k])); p < history_->end(static_cast<int32_t>(id[k])); ++p)
      tok.push_back(history_->indices[p]);
  }
  auto t = torch::tensor(tok, torch::kInt64), o = torch::tensor(off, torch::kInt64);
  auto emb = items(t.numel() ? t : torch::zeros({1}, torch::kInt64));
  if (t.numel() == 0) return torch::zeros({idc.numel(), dim_});
  auto idx = torch::arange(t.numel(), torch::kInt64);
  return std::get<0>(torch::embedding_bag(emb, idx, o, false, 1, false, {}, false));
}

torch::Tensor SiameseNet::user_from_history(const std::vector<int32_t>& hist) {
  std::vector<int64_t> tok;
  for (auto i : hist)
    if (i >= 0 && i < layout_.n_items) tok.push_back(i);
  if (tok.empty()) return torch::zeros({1, dim_});
  auto t = torch::tensor(tok, torch::kInt64);
  auto off = torch::zeros({1}, torch::kInt64);
  // Towers that take bags encode the history as a user would be encoded (same tokens).
  if (layout_.user_anchor && layout_.shared && item_tower_->supports_bags()) return item_tower_->forward_bags(t, off);
  if (layout_.user_anchor && !layout_.shared && user_tower_->supports_bags()) return user_tower_->forward_bags(t, off);
  // Otherwise: the centroid of the history items' embeddings.
  return items(t).mean(0, true);
}

std::vector<torch::Tensor> SiameseNet::tables() {
  auto t = item_tower_->tables();
  if (user_tower_)
    for (auto& x : user_tower_->tables()) t.push_back(x);
  return t;
}

void SiameseNet::begin_epoch() {
  item_tower_->begin_epoch();
  if (user_tower_) user_tower_->begin_epoch();
}

void SiameseNet::set_sparse(bool s) {
  sparse_ = s;
  item_tower_->set_sparse(s);
  if (user_tower_) user_tower_->set_sparse(s);
}

void write_state(BinWriter& w, torch::nn::Module& m) {
  auto params = m.named_parameters(true);
  auto bufs = m.named_buffers(true);
  w.put<uint64_t>(params.size() + bufs.size());
  for (auto* dict : {&params, &bufs})
    for (auto& kv : *dict) {
      w.put_str(kv.key());
      auto t = kv.value().detach().to(torch::kFloat32).contiguous();
      std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
      w.put_vec(shape);
      std::vector<float> data(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
      w.put_vec(data);
    }
}

void read_state(BinReader& r, torch::nn::Module& m, const std::string& what) {
  auto params = m.named_parameters(true);
  auto bufs = m.named_buffers(true);
  uint64_t n = r.get<uint64_t>();
  if (n != params.size() + bufs.size())
    throw Error(
        fmt::format("{}: {} tensors stored, the configured network has {}", what, n, params.size() + bufs.size()));
  torch::NoGradGuard ng;
  for (uint64_t k = 0; k < n; ++k) {
    std::string name = r.get_str();
    std::vector<int64_t> shape;
    std::vector<float> data;
    r.get_vec(shape);
    r.get_vec(data);
    torch::Tensor* dst = params.find(name);
    if (!dst) dst = bufs.find(name);
    if (!dst) throw Error(fmt::format("{}: tensor '{}' does not exist in the configured network", what, name));
    if (dst->sizes().vec() != shape || static_cast<int64_t>(data.size()) != dst->numel())
      throw Error(fmt::format("{}: tensor '{}' has shape {}, the network expects {}", what, name, fmt::join(shape, "x"),
                              fmt::join(dst->sizes().vec(), "x")));
    dst->copy_(torch::from_blob(data.data(), shape, torch::kFloat32));
  }
}

std::vector<torch::Tensor> snapshot(torch::nn::Module& m) {
  std::vector<torch::Tensor> s;
  for (auto& p : m.parameters()) s.push_back(p.detach().clone());
  return s;
}

void restore(torch::nn::Module& m, const std::vector<torch::Tensor>& s) {
  torch::NoGradGuard ng;
  auto ps = m.parameters();
  for (size_t k = 0; k < ps.size(); ++k) ps[k].copy_(s[k]);
}

FusedSpec fused_spec(const Config& c, SiameseNet& net, int threads, float label_offset) {
  FusedSpec f;
  auto tables = net.tables();
  const NetLayout& L = net.layout();
  f.user_anchor = L.user_anchor;
  f.joint = L.user_anchor && L.shared;
  f.n_items = L.n_items;
  f.dim = net.dim();
  auto space = [&](const std::string& type, const torch::Tensor& t, const EntityFeatures* feats,
                   const std::string& pooling) {
    FusedSpace sp;
    sp.w = t.data_ptr<float>();
    sp.rows = t.size(0);
    sp.bag = type == "bag";
    sp.sum = pooling == "sum";
    sp.feats = feats;
    return sp;
  };
  f.items = space(c.str("tower.type"), tables.at(0), &L.items, c.str("tower.pooling"));
  if (L.user_anchor && !L.shared)
    f.users = space(c.str("user_tower.type"), tables.at(1), &L.users, c.str("user_tower.pooling"));
  f.comparator = c.str("comparator.type");
  f.loss = c.str("loss.type");
  f.optimizer = c.str("train.optimizer");
  f.margin = c.real("loss.margin");
  f.temperature = c.real("loss.temperature");
  f.pos_margin = c.real("loss.pos_margin");
  f.neg_weight = c.real("loss.neg_weight");
  f.lr = c.real("train.lr");
  f.l2 = c.real("reg.l2");
  f.max_norm = c.real("reg.max_norm");
  f.k = f.loss == "mse" ? 0 : static_cast<int>(c.integer("sampler.negatives"));
  f.batch = c.integer("train.batch_size");
  f.threads = std::max(1, threads);
  f.deterministic = c.flag("train.deterministic");
  f.per_example = c.str("train.update") == "example";
  f.sync_every = c.integer("dist.sync_every");
  f.hot_rows = c.integer("train.hot_rows");
  f.merge_every = c.integer("train.merge_every");
  if (f.per_example && f.deterministic)
    throw ConfigError("train.update 'example' (Hogwild per-example updates) cannot be train.deterministic");
  f.seed = static_cast<uint64_t>(c.integer("train.seed"));
  f.label_offset = label_offset;
  return f;
}

}  // namespace siamrec
