#include "towers/features.h"

#include <algorithm>

#include "util/io.h"

namespace siamrec {

void EntityFeatures::save(BinWriter& w) const {
  w.put<int64_t>(n);
  w.put_vec(bag_ptr);
  w.put_vec(bag_tok);
  w.put<int64_t>(bag_vocab);
  w.put_vec(dense);
  w.put<int64_t>(dense_dim);
  w.put_str(description);
  w.put_vec(graph_ptr);
  w.put_vec(graph_idx);
  w.put_vec(content_shape);
  w.put_vec(content);
  w.put_vec(text_ptr);
  w.put_vec(text_tok);
  w.put<int64_t>(text_vocab);
  w.put_vec(warm);
}

void EntityFeatures::load(BinReader& r) {
  n = r.get<int64_t>();
  r.get_vec(bag_ptr);
  r.get_vec(bag_tok);
  bag_vocab = r.get<int64_t>();
  r.get_vec(dense);
  dense_dim = r.get<int64_t>();
  description = r.get_str();
  graph_ptr.clear();
  graph_idx.clear();
  if (r.version() >= 2) {  // format 2 added the graph
    r.get_vec(graph_ptr);
    r.get_vec(graph_idx);
  }
  if (r.version() >= 3) {  // format 3: content, text, warm flags
    r.get_vec(content_shape);
    r.get_vec(content);
    r.get_vec(text_ptr);
    r.get_vec(text_tok);
    text_vocab = r.get<int64_t>();
    r.get_vec(warm);
  }
  bool ok = n >= 0 && bag_ptr.size() == static_cast<size_t>(n) + 1 &&
            bag_ptr.back() == static_cast<int64_t>(bag_tok.size()) &&
            dense.size() == static_cast<size_t>(n * dense_dim);
  for (auto t : bag_tok) ok = ok && t >= 0 && t < bag_vocab;
  if (!text_ptr.empty()) {
    ok =
        ok && text_ptr.size() == static_cast<size_t>(n) + 1 && text_ptr.back() == static_cast<int64_t>(text_tok.size());
    for (auto t : text_tok) ok = ok && t >= 0 && t < text_vocab;
  }
  ok = ok && (warm.empty() || warm.size() == static_cast<size_t>(n));
  if (!content_shape.empty()) {
    int64_t per = 1;
    for (auto d : content_shape) ok = ok && d > 0, per *= std::max<int64_t>(d, 1);
    ok = ok && content.size() == static_cast<size_t>(n * per);
  }
  if (!graph_ptr.empty()) {
    ok = ok && graph_ptr.size() == static_cast<size_t>(n) + 1 &&
         graph_ptr.back() == static_cast<int64_t>(graph_idx.size());
    for (auto t : graph_idx) ok = ok && t >= 0 && t < n;
  }
  if (!ok) throw Error("model file is malformed (entity features are inconsistent)");
}

PaddedBags pad_bags(const int64_t* t, const int64_t* o, int64_t B, int64_t T, int64_t max_len, int64_t min_len,
                    bool latest) {
  PaddedBags p;
  p.len.resize(static_cast<size_t>(B));
  p.L = min_len;
  for (int64_t b = 0; b < B; ++b) {
    p.len[b] = std::min((b + 1 < B ? o[b + 1] : T) - o[b], max_len);
    p.L = std::max(p.L, p.len[b]);
  }
  p.seq.assign(static_cast<size_t>(B * p.L), 0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t from = latest ? (b + 1 < B ? o[b + 1] : T) - p.len[b] : o[b];
    std::copy_n(t + from, p.len[b], p.seq.data() + b * p.L);
  }
  return p;
}

}  // namespace siamrec
