// tfidf: content kNN baseline for cold start. Items are TF-IDF vectors of their text (tower.text:
// title, genres, tags; tokenizer text.*), idf = ln((1 + N) / (1 + df)) + 1, rows L2-normalized; a
// user is the L2-normalized sum of her training items' vectors; score = cosine(user, item).
// Items never trained on are scored from their text alone.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "config/config.h"
#include "content/item_text.h"
#include "data/dataset.h"
#include "models/model.h"
#include "baselines/knn.h"
#include "scoring/topk.h"
#include "util/error.h"
#include "util/error.h"
#include "util/io.h"

namespace siamrec {

class TfidfModel : public Model {
 public:
  std::string type() const override { return "tfidf"; }
  void update(const UpdateData&) override {
    throw ConfigError(
        "model type 'tfidf' cannot be updated: it reads every item's text (titles, genres, tags), which a model "
        "file does not hold; retrain it with `siamrec train` on the whole data");
  }
  void fit(const FitData& d) override {
    n_users_ = d.ds->n_users();
    n_items_ = d.ds->n_items();
    const Config& c = *d.cfg;
    ItemText t = item_text(*d.ds, c);
    vocab_ = t.vocab();
    std::vector<double> df(vocab_, 0.0);
    for (int32_t i = 0; i < n_items_; ++i) {
      std::vector<int64_t> seen(t.tok.begin() + t.ptr[i], t.tok.begin() + t.ptr[i + 1]);
      std::sort(seen.begin(), seen.end());
      seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
      for (auto x : seen) df[x] += 1;
    }
    vec_ = Csr{};
    for (int32_t i = 0; i < n_items_; ++i) {
      std::map<int64_t, double> tf;
      for (int64_t p = t.ptr[i]; p < t.ptr[i + 1]; ++p)
        if (t.tok[p] > 1) tf[t.tok[p]] += 1;  // skip <pad>/<unk>
      double norm = 0;
      std::vector<std::pair<int64_t, double>> row;
      for (auto [x, f] : tf) {
        double v = f * (std::log((1.0 + n_items_) / (1.0 + df[x])) + 1.0);
        row.emplace_back(x, v);
        norm += v * v;
      }
      norm = norm > 0 ? std::sqrt(norm) : 1;
      for (auto [x, v] : row)
        vec_.indices.push_back(static_cast<int32_t>(x)), vec_.values.push_back(static_cast<float>(v / norm));
      vec_.indptr.push_back(vec_.nnz());
    }
    hist_ = *d.train_by_user;
  }
  void score(const int32_t* users, int n, float* out) const override {
    for (int r = 0; r < n; ++r) {
      std::vector<int32_t> h(hist_.indices.begin() + hist_.begin(users[r]),
                             hist_.indices.begin() + hist_.end(users[r]));
      score_history(h, out + static_cast<size_t>(r) * n_items_);
    }
  }
  void score_history(const std::vector<int32_t>& items, float* out) const override {
    std::vector<float> prof(static_cast<size_t>(vocab_), 0.0f);
    for (auto i : items)
      if (i >= 0 && i < n_items_)
        for (int64_t p = vec_.begin(i); p < vec_.end(i); ++p) prof[vec_.indices[p]] += vec_.values[p];
    normalize_rows(prof.data(), 1, vocab_);
    for (int32_t i = 0; i < n_items_; ++i) {
      float s = 0;
      for (int64_t p = vec_.begin(i); p < vec_.end(i); ++p) s += prof[vec_.indices[p]] * vec_.values[p];
      out[i] = s;
    }
  }
  void save(BinWriter& w) const override {
    w.put<int64_t>(vocab_);
    write_csr(w, vec_);
    w.put_vec(hist_.indptr), w.put_vec(hist_.indices);
  }
  void load(BinReader& r) override {
    vocab_ = r.get<int64_t>();
    if (vocab_ < 0 || vocab_ > INT32_MAX) throw Error("model file is malformed (tfidf vocabulary size)");
    vec_ = read_csr(r, n_items_, static_cast<int32_t>(vocab_), "tfidf vectors");
    if (vec_.values.size() != vec_.indices.size())
      throw Error("model file is malformed (tfidf vectors have no weights)");
    r.get_vec(hist_.indptr), r.get_vec(hist_.indices);  // no values section (the file's layout)
    check_csr(hist_, n_users_, n_items_, "tfidf history");
  }

 private:
  int64_t vocab_ = 0;
  Csr vec_;  // item -> its L2-normalized TF-IDF weights over the vocabulary
  Csr hist_;
};

SIAMREC_REGISTER_MODEL(
    "tfidf", "content kNN: cosine between TF-IDF item text (tower.text) and the user's summed liked-item vectors",
    TfidfModel);

}  // namespace siamrec
