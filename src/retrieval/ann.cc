#include "retrieval/ann.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/invlists/OnDiskInvertedLists.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/io.h"

namespace siamrec {

// A file mapped read-only into memory (the saved graph: its pages come from the page cache on
// demand and are shared by every process serving the same model).
struct Mapping {
  void* p = MAP_FAILED;
  size_t n = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (p != MAP_FAILED) munmap(p, n);
  }
  const char* data() const { return static_cast<const char*>(p); }
};

// hnswlib's graph over a mapped file: the level-0 block (vectors, labels and base-layer links, the
// bulk of the file) and the upper layers' link lists point into the mapping instead of being read
// into malloc'd copies as hnswlib's loadIndex does. Search only reads them; nothing here adds or
// deletes points (the mapping is read-only: a write would fault). The destructor hands hnswlib
// nothing of the mapping to free.
class MappedHnsw : public hnswlib::HierarchicalNSW<float> {
 public:
  MappedHnsw(hnswlib::SpaceInterface<float>* s, const std::string& path, std::shared_ptr<Mapping> map)
      : hnswlib::HierarchicalNSW<float>(s), map_(std::move(map)) {
    // hnswlib's empty constructor leaves its members unset, and its destructor runs when this one
    // throws: first a state it can destroy (nothing to free), then the graph.
    data_level0_memory_ = nullptr, linkLists_ = nullptr, visited_list_pool_ = nullptr, cur_element_count = 0;
    try {
      read(s, path);
    } catch (...) {
      data_level0_memory_ = nullptr;
      cur_element_count = 0;
      std::free(linkLists_);
      linkLists_ = nullptr;
      throw;
    }
  }
  ~MappedHnsw() {
    data_level0_memory_ = nullptr;                                 // the mapping's, not malloc's
    std::fill(element_levels_.begin(), element_levels_.end(), 0);  // no link list of ours to free
  }

 private:
  void read(hnswlib::SpaceInterface<float>* s, const std::string& path) {
    const char* b = map_->data();
    const size_t size = map_->n;
    size_t at = 0;
    auto pod = [&](auto& v) {
      if (at + sizeof v > size) throw Error(fmt::format("HNSW index '{}' is truncated (header)", path));
      std::memcpy(&v, b + at, sizeof v);
      at += sizeof v;
    };
    pod(offsetLevel0_), pod(max_elements_), pod(cur_element_count), pod(size_data_per_element_);
    pod(label_offset_), pod(offsetData_), pod(maxlevel_), pod(enterpoint_node_), pod(maxM_);
    pod(maxM0_), pod(M_), pod(mult_), pod(ef_construction_);
    max_elements_ = cur_element_count;
    data_size_ = s->get_data_size();
    fstdistfunc_ = s->get_dist_func();
    dist_func_param_ = s->get_dist_func_param();
    size_links_per_element_ = maxM_ * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
    size_links_level0_ = maxM0_ * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
    const size_t level0 = cur_element_count * size_data_per_element_;
    if (size_data_per_element_ == 0 || level0 / size_data_per_element_ != cur_element_count || at + level0 > size)
      throw Error(fmt::format("HNSW index '{}' is truncated (level 0)", path));
    data_level0_memory_ = const_cast<char*>(b + at);
    at += level0;
    num_deleted_ = 0;
    revSize_ = 1.0 / mult_;
    ef_ = 10;
    element_levels_.assign(cur_element_count, 0);
    linkLists_ = static_cast<char**>(std::calloc(std::max<size_t>(1, cur_element_count), sizeof(char*)));
    if (!linkLists_) throw Error(fmt::format("out of memory mapping HNSW index '{}'", path));
    for (size_t i = 0; i < cur_element_count; ++i) {
      unsigned int n = 0;
      pod(n);
      if (n == 0) continue;
      if (n % size_links_per_element_ != 0 || at + n > size)
        throw Error(fmt::format("HNSW index '{}' is corrupt (link list of element {})", path, i));
      element_levels_[i] = static_cast<int>(n / size_links_per_element_);
      linkLists_[i] = const_cast<char*>(b + at);
      at += n;
    }
    if (at != size) throw Error(fmt::format("HNSW index '{}' has {} bytes past its graph", path, size - at));
    if (cur_element_count > 0 && (enterpoint_node_ >= cur_element_count || maxlevel_ < 0))
      throw Error(fmt::format("HNSW index '{}' is corrupt (entry point)", path));
    std::vector<std::mutex>(cur_element_count).swap(link_list_locks_);
    std::vector<std::mutex>(max_update_element_locks).swap(link_list_update_locks_);
    visited_list_pool_ = new hnswlib::VisitedListPool(1, std::max<size_t>(1, cur_element_count));
  }
  std::shared_ptr<Mapping> map_;
};

struct AnnIndex::Impl {
  std::string type = "hnsw";
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
  std::unique_ptr<faiss::Index> ivf;  // type ivf: an IndexIVFFlat (its quantizer owned by it)
};

static faiss::MetricType metric_of(Similarity kind) {
  return kind == Similarity::Dot || kind == Similarity::Cosine ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
}

static faiss::IndexIVF* as_ivf(faiss::Index* x) { return dynamic_cast<faiss::IndexIVF*>(x); }

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
  if (o.type == "ivf") {
    // k-means lists over (a sample of at most 256 per list of) the items, then every item into its
    // list. Cosine: unit rows under inner product.
    impl_->type = "ivf";
    const int64_t nlist = std::clamp<int64_t>(
        o.nlist > 0 ? o.nlist : static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(n)))), 1,
        std::max<int64_t>(1, n));
    std::vector<float> rows(items, items + n * dim);
    if (kind == Similarity::Cosine)
      for (int64_t i = 0; i < n; ++i) {
        std::vector<float> v(rows.begin() + i * dim, rows.begin() + (i + 1) * dim);
        unit(v);
        std::copy(v.begin(), v.end(), rows.begin() + i * dim);
      }
    const int before = omp_get_max_threads();
    omp_set_num_threads(std::max(1, o.threads));
    try {
      auto* quantizer = metric_of(kind) == faiss::METRIC_INNER_PRODUCT
                            ? static_cast<faiss::IndexFlat*>(new faiss::IndexFlatIP(dim))
                            : static_cast<faiss::IndexFlat*>(new faiss::IndexFlatL2(dim));
      auto ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer, dim, static_cast<size_t>(nlist), metric_of(kind));
      ivf->own_fields = true;
      ivf->cp.seed = 1234;
      ivf->verbose = false;
      if (n > 0) {
        ivf->train(n, rows.data());
        ivf->add(n, rows.data());
      }
      ivf->nprobe = static_cast<size_t>(std::clamp<int64_t>(o.nprobe, 1, nlist));
      impl_->ivf = std::move(ivf);
    } catch (const faiss::FaissException& e) {
      omp_set_num_threads(before);
      throw Error(fmt::format("faiss could not build the IVF index: {}", e.what()));
    }
    omp_set_num_threads(before);
    return;
  }
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
  if (impl_->ivf) {  // faiss's format, serialized in memory, then written as below
    faiss::VectorIOWriter w;
    try {
      faiss::write_index(impl_->ivf.get(), &w);
    } catch (const faiss::FaissException& e) {
      throw Error(fmt::format("cannot serialize the IVF index for '{}': {}", path, e.what()));
    }
    const std::string_view b(reinterpret_cast<const char*>(w.data.data()), w.data.size());
    OutputFile f(path);
    f.write(std::string(b));
    f.commit();
    return sha256_hex(b);
  }
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

std::unique_ptr<AnnIndex> AnnIndex::load(const std::string& path, int64_t n, int dim, Similarity kind,
                                         const AnnOptions& o) {
  if (o.type != "ivf") return load(path, n, dim, kind, o.ef_search);
  std::unique_ptr<AnnIndex> a(new AnnIndex(n, dim, kind));
  a->impl_->type = "ivf";
  try {
    // IO_FLAG_MMAP: the inverted lists (the vectors, the bulk of the file) stay in the mapped file.
    a->impl_->ivf.reset(faiss::read_index(path.c_str(), faiss::IO_FLAG_MMAP | faiss::IO_FLAG_READ_ONLY));
  } catch (const faiss::FaissException& e) {
    throw Error(fmt::format("cannot read the IVF index '{}': {}", path, e.what()));
  }
  faiss::IndexIVF* ivf = as_ivf(a->impl_->ivf.get());
  if (!ivf || ivf->d != dim || ivf->ntotal != n || ivf->metric_type != metric_of(kind))
    throw Error(fmt::format("IVF index '{}' holds another catalogue ({} items of {} dims; the model {} of {})", path,
                            a->impl_->ivf->ntotal, a->impl_->ivf->d, n, dim));
  ivf->nprobe = static_cast<size_t>(std::clamp<int64_t>(o.nprobe, 1, static_cast<int64_t>(ivf->nlist)));
  // Mapped lists are read in place: no prefetch threads (faiss would start them on every query,
  // which made one query of 16 lists take 6 ms instead of 0.3 ms at 200k items).
  if (auto* od = dynamic_cast<faiss::OnDiskInvertedLists*>(ivf->invlists)) od->prefetch_nthread = 0;
  return a;
}

std::unique_ptr<AnnIndex> AnnIndex::load(const std::string& path, int64_t n, int dim, Similarity kind, int ef_search) {
  std::unique_ptr<AnnIndex> a(new AnnIndex(n, dim, kind));
  a->impl_->space = make_space(kind, dim);
  auto map = std::make_shared<Mapping>();
  {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(fmt::format("cannot read the HNSW index '{}': {}", path, std::strerror(errno)));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
      ::close(fd);
      throw Error(fmt::format("cannot read the HNSW index '{}': not a non-empty regular file", path));
    }
    map->n = static_cast<size_t>(st.st_size);
    map->p = mmap(nullptr, map->n, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (map->p == MAP_FAILED) throw Error(fmt::format("cannot map the HNSW index '{}': {}", path, std::strerror(err)));
  }
  a->impl_->index = std::make_unique<MappedHnsw>(a->impl_->space.get(), path, map);
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
  json want = {{"model_sha256", model_sha256}, {"similarity", space_name(kind)}, {"items", n}, {"dim", dim}};
  if (o.type == "ivf") {
    want["index"] = "ivf";
    want["nlist"] = o.nlist;
  } else {
    want["m"] = o.m;
    want["ef_construction"] = o.ef_construction;
  }
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
        auto a = AnnIndex::load(path, n, dim, kind, o);
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
      spdlog::warn("{} index not cached ({}); it is rebuilt at every load", o.type == "ivf" ? "IVF" : "HNSW", e.what());
    }
  }
  if (how) *how = "built (" + why + ")" + saved;
  return a;
}

void AnnIndex::set_ef(int ef) {
  if (faiss::IndexIVF* ivf = as_ivf(impl_->ivf.get()))
    ivf->nprobe = static_cast<size_t>(std::clamp<int64_t>(ef, 1, static_cast<int64_t>(ivf->nlist)));
  else
    impl_->index->setEf(ef);
}

const std::string& AnnIndex::type() const { return impl_->type; }

std::vector<std::pair<int32_t, float>> AnnIndex::search(const float* query, int k) const {
  std::vector<float> q(query, query + dim_);
  if (kind_ == Similarity::Cosine) unit(q);
  if (impl_->ivf) {
    const int64_t kk = std::min<int64_t>(k, n_);
    std::vector<float> d(static_cast<size_t>(std::max<int64_t>(kk, 1)));
    std::vector<faiss::Index::idx_t> ids(d.size());
    if (kk > 0) impl_->ivf->search(1, q.data(), kk, d.data(), ids.data());
    std::vector<std::pair<int32_t, float>> out;
    for (int64_t r = 0; r < kk; ++r) {
      if (ids[r] < 0) break;  // fewer than k items in the lists probed
      const float v = kind_ == Similarity::Dot || kind_ == Similarity::Cosine ? d[r]
                      : kind_ == Similarity::NegSqEuclidean                   ? -d[r]
                                                                              : -std::sqrt(std::max(0.0f, d[r]));
      out.push_back({static_cast<int32_t>(ids[r]), v});
    }
    return out;
  }
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
