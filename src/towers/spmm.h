// Sparse propagation for graph towers (torch-free): a CSR matrix and a multithreaded CSR x dense
// product. LightGCN's normalized adjacency D^-1/2 A D^-1/2 is symmetric, so the same kernel
// computes the forward pass and the gradient.
#pragma once
#include <cstdint>
#include <vector>

namespace siamrec {

struct CsrMatrix {
  int64_t n = 0;               // rows = columns
  std::vector<int64_t> ptr{0};  // row starts, n + 1
  std::vector<int32_t> idx;     // column of each non-zero
  std::vector<float> val;       // value of each non-zero
  int64_t nnz() const { return static_cast<int64_t>(idx.size()); }
};

// Symmetric normalization D^-1/2 A D^-1/2 of an unweighted adjacency given as CSR (ptr, idx);
// isolated nodes keep empty rows. Throws on indices out of range.
CsrMatrix normalized_adjacency(int64_t n, const std::vector<int64_t>& ptr, const std::vector<int64_t>& idx);

// y[n x d] = M x[n x d], rows split over OpenMP threads (each row written by one thread).
void spmm(const CsrMatrix& m, const float* x, int64_t d, float* y);

}  // namespace siamrec
