#include "retrieval/ann.h"

#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

namespace siamrec {

struct AnnIndex::Impl {
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
};

static void unit(std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x * x;
  if (s > 0)
    for (auto& x : v) x = static_cast<float>(x / std::sqrt(s));
}

AnnIndex::AnnIndex(const float* items, int64_t n, int dim, Similarity kind, const AnnOptions& o)
    : impl_(std::make_unique<Impl>()), n_(n), dim_(dim), kind_(kind) {
  bool ip = kind == Similarity::Dot || kind == Similarity::Cosine;
  if (ip)
    impl_->space = std::make_unique<hnswlib::InnerProductSpace>(dim);
  else
    impl_->space = std::make_unique<hnswlib::L2Space>(dim);
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

AnnIndex::~AnnIndex() = default;

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
