// Shared pieces of the neighbourhood baselines: a sparse top-k similarity list per row.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace siamrec {

class BinWriter;
class BinReader;

// For each row r of `a` (rows x cols, binary), the `k` most cosine-similar other rows:
// sim(r, s) = |a_r ∩ a_s| / (sqrt(|a_r| |a_s|) + shrink), found through `a_t` (cols -> rows).
// Result: CSR rows -> (neighbour, similarity), neighbours sorted by similarity desc then id.
Csr cosine_neighbors(const Csr& a, const Csr& a_t, int k, double shrink, int threads);
// Similarity of one binary row (sorted, unique columns) against every row of `a`, via `a_t`.
void cosine_row(const std::vector<int32_t>& row, const Csr& a, const Csr& a_t, double shrink, std::vector<float>& out);
// Unique sorted columns per row (duplicates removed).
Csr binary_csr(const Csr& m);
Csr transpose(const Csr& m, int32_t n_cols);
void write_csr(BinWriter& w, const Csr& m);
Csr read_csr(BinReader& r, int32_t rows, int32_t cols, const char* what);
// Throws "model file is malformed (<what> section is inconsistent)" unless m is a rows x cols CSR.
void check_csr(const Csr& m, int32_t rows, int32_t cols, const char* what);

}  // namespace siamrec
