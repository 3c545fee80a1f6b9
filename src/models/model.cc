#include "models/model.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "util/error.h"
#include "util/names.h"
#include "util/registry.h"

namespace siamrec {

void Model::score_pairs(const int32_t* users, const int32_t* items, int64_t n, float* out) const {
  std::vector<float> row(n_items_);
  for (int64_t k = 0; k < n; ++k) {
    score(&users[k], 1, row.data());
    out[k] = row[items[k]];
  }
}

void Model::update(const UpdateData& u) {
  FitData d = u.fit;
  d.train = u.all;
  d.valid = nullptr;
  d.validator = {};
  fit(d);
}

bool Model::similar_items(int32_t item, int k, std::vector<std::pair<int32_t, float>>& out) const {
  int dim = 0;
  const float* e = item_embeddings(&dim);
  if (!e) return false;
  // Cosine similarity of item embeddings.
  std::vector<float> norm(n_items_);
  for (int32_t i = 0; i < n_items_; ++i) {
    double s = 0;
    for (int d = 0; d < dim; ++d) s += e[static_cast<size_t>(i) * dim + d] * e[static_cast<size_t>(i) * dim + d];
    norm[i] = static_cast<float>(std::sqrt(s));
  }
  std::vector<std::pair<float, int32_t>> all;
  for (int32_t j = 0; j < n_items_; ++j) {
    if (j == item) continue;
    double s = 0;
    for (int d = 0; d < dim; ++d) s += e[static_cast<size_t>(item) * dim + d] * e[static_cast<size_t>(j) * dim + d];
    float den = norm[item] * norm[j];
    all.emplace_back(den > 0 ? static_cast<float>(s / den) : 0.0f, j);
  }
  auto cmp = [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  k = std::min<int>(k, static_cast<int>(all.size()));
  std::partial_sort(all.begin(), all.begin() + k, all.end(), cmp);
  out.clear();
  for (int j = 0; j < k; ++j) out.emplace_back(all[j].second, all[j].first);
  return true;
}

bool register_model(const std::string& name, const std::string& help, ModelFactory f) {
  return Registry<ModelFactory>::get().add(name, help, std::move(f)) && register_name("model", name, help);
}

std::vector<std::string> model_names() { return Registry<ModelFactory>::get().names(); }

std::string model_help(const std::string& name) { return Registry<ModelFactory>::get().help(name); }

std::unique_ptr<Model> create_model(const std::string& name) {
  return Registry<ModelFactory>::get().find(name, "model.type")();
}

}  // namespace siamrec
