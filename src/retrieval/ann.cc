#include "retrieval/ann.h"

#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/io.h"

namespace siamrec {

struct AnnIndex::Impl {
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
};

static std::unique_ptr<hnswlib::SpaceInterface<float>> make_space(Similarity kind, int dim) {
  if (kind == Similarity::Dot || kind == Similarity::Cosine) return std::make_unique<hnswlib::InnerProductSpace>(dim);
  return std::make_unique<hnswlib::L2Space>(dim);
}

static void unit(std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x * x;
  if (s > 0)
    for (auto& x : v) x = static_cast<float>(x / std::sqrt(s));
}

AnnIndex::AnnIndex(const float* items, int64_t n, int dim, Similarity kind, const AnnOptions& o)
    : impl_(std::make_unique<Impl>()), n_(n), dim_(dim), kind_(kind) {
  impl_->space = make_space(kind, dim);
  impl_->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(impl_->space.get(), static_cast<size_t>(n), o.m,
                                                                   o.ef_construction, 100);
  auto add = [&](int64_t i) {
    std::vector<float> v(items + i * dim, items + (i + 1) * dim);
    if (kind == Similarity::Cosine) unit(v);
    impl_->index->addPoint(v.data(), static_cast<hnswlib::labeltype>(i));
  };
  if (n > 0) add(0);
#pragma omp parallel for num_threads(std::max(1, o.threads)) schedule(dynamic, 256)
  for (int64_t i = 1; i < n; ++i) add(i);
  impl_->index->setEf(o.ef_search);
}

AnnIndex::AnnIndex(int64_t n, int dim, Similarity kind)
    : impl_(std::make_unique<Impl>()), n_(n), dim_(dim), kind_(kind) {}

AnnIndex::~AnnIndex() = default;

std::string AnnIndex::save(const std::string& path) const {
  // hnswlib's own saveIndex format, written through OutputFile: every write checked (hnswlib's
  // ofstream is not), fsync, atomic rename.
  const auto& x = *impl_->index;
  std::string b;
  auto pod = [&b](const auto& v) { b.append(reinterpret_cast<const char*>(&v), sizeof v); };
  pod(x.offsetLevel0_), pod(x.max_elements_), pod(x.cur_element_count), pod(x.size_data_per_element_);
  pod(x.label_offset_), pod(x.offsetData_), pod(x.maxlevel_), pod(x.enterpoint_node_), pod(x.maxM_);
  pod(x.maxM0_), pod(x.M_), pod(x.mult_), pod(x.ef_construction_);
  b.append(x.data_level0_memory_, x.cur_element_count * x.size_data_per_element_);
  for (size_t i = 0; i < x.cur_element_count; i++) {
    const unsigned int size = x.element_levels_[i] > 0 ? x.size_links_per_element_ * x.element_levels_[i] : 0;
    pod(size);
    if (size) b.append(x.linkLists_[i], size);
  }
  OutputFile f(path);
  f.write(b);
  f.commit();
  return sha256_hex(b);
}

std::unique_ptr<AnnIndex> AnnIndex::load(const std::string& path, int64_t n, int dim, Similarity kind, int ef_search) {
  std::unique_ptr<AnnIndex> a(new AnnIndex(n, dim, kind));
  a->impl_->space = make_space(kind, dim);
  try {
    a->impl_->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(a->impl_->space.get(), path, false, 0);
  } catch (const std::exception& e) {
    throw Error(fmt::format("cannot read the HNSW index '{}': {}", path, e.what()));
  }
  if (a->impl_->index->cur_element_count != static_cast<size_t>(n))
    throw Error(
        fmt::format("HNSW index '{}' holds {} items, the model {}", path, a->impl_->index->cur_element_count, n));
  a->impl_->index->setEf(ef_search);
  return a;
}

static const char* space_name(Similarity k) {
  return k == Similarity::Dot              ? "dot"
         : k == Similarity::Cosine         ? "cosine"
         : k == Similarity::NegSqEuclidean ? "sqeuclidean"
                                           : "euclidean";
}

std::unique_ptr<AnnIndex> load_or_build_ann(const std::string& path, const std::string& model_sha256,
                                            const float* items, int64_t n, int dim, Similarity kind,
                                            const AnnOptions& o, bool write, std::string* how) {
  using json = nlohmann::json;
  const json want = {
      {"model_sha256", model_sha256},        {"similarity", space_name(kind)}, {"items", n}, {"dim", dim}, {"m", o.m},
      {"ef_construction", o.ef_construction}};
  const std::string meta_path = path + ".json";
  std::string why;
  if (!file_exists(path) || !file_exists(meta_path)) {
    why = "no cached index";
  } else {
    try {
      json meta = json::parse(read_file(meta_path));
      for (auto& [k, v] : want.items())
        if (!meta.contains(k) || meta[k] != v) {
          why = fmt::format("the cached index was built for another {}", k);
          break;
        }
      if (why.empty() && sha256_file(path) != meta.value("sha256", ""))
        why = "the cached index is corrupt (checksum mismatch)";
      if (why.empty()) {
        auto a = AnnIndex::load(path, n, dim, kind, o.ef_search);
        if (how) *how = "loaded from " + path;
        return a;
      }
    } catch (const std::exception& e) {
      why = fmt::format("the cached index is unreadable ({})", e.what());
    }
  }
  auto a = std::make_unique<AnnIndex>(items, n, dim, kind, o);
  std::string saved;
  if (write) {
    try {
      json meta = want;
      meta["sha256"] = a->save(path);
      atomic_write(meta_path, meta.dump(1) + "\n");
      saved = "; saved to " + path;
    } catch (const std::exception& e) {
      spdlog::warn("HNSW index not cached ({}); it is rebuilt at every load", e.what());
    }
  }
  if (how) *how = "built (" + why + ")" + saved;
  return a;
}

void AnnIndex::set_ef(int ef) { impl_->index->setEf(ef); }

std::vector<std::pair<int32_t, float>> AnnIndex::search(const float* query, int k) const {
  std::vector<float> q(query, query + dim_);
  if (kind_ == Similarity::Cosine) unit(q);
  auto heap = impl_->index->searchKnn(q.data(), static_cast<size_t>(std::min<int64_t>(k, n_)));
  std::vector<std::pair<int32_t, float>> out(heap.size());
  for (size_t r = heap.size(); r-- > 0;) {  // the heap pops the worst first
    auto [d, label] = heap.top();
    heap.pop();
    float s = kind_ == Similarity::Dot || kind_ == Similarity::Cosine ? 1 - d
              : kind_ == Similarity::NegSqEuclidean                   ? -d
                                                                      : -std::sqrt(std::max(0.0f, d));
    out[r] = {static_cast<int32_t>(label), s};
  }
  return out;
}

}  // namespace siamrec
