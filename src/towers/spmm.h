// Sparse propagation for graph towers (torch-free): a multithreaded CSR x dense product over the
// project's Csr (data/dataset.h), here a square matrix with values. LightGCN's normalized adjacency D^-1/2 A D^-1/2 is
// symmetric, so the same kernel computes the forward pass and the gradient.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace siamrec {

// Symmetric normalization D^-1/2 A D^-1/2 of an unweighted adjacency given as CSR (ptr, idx);
// isolated nodes keep empty rows. Throws on indices out of range.
Csr normalized_adjacency(int64_t n, const std::vector<int64_t>& ptr, const std::vector<int64_t>& idx);

// y[n x d] = M x[n x d], rows split over OpenMP threads (each row written by one thread). Widths
// 16, 32, 64 and 128 keep a row's sums in registers (spmm.cc); others take the general loop.
void spmm(const Csr& m, const float* x, int64_t d, float* y);
// The general loop whatever the width (the benchmark's baseline: bench_gcn).
void spmm_general(const Csr& m, const float* x, int64_t d, float* y);

}  // namespace siamrec
