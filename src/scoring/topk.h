// Batched scoring and top-K: blocks of users are scored against every item (GEMM for embedding
// models), excluded items masked, and a partial top-K taken, in parallel over blocks. The full
// users x items score matrix is never held: peak memory is O(threads x block x items).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace siamrec {

struct Csr;

// Scores n users against every item: out is n x n_items, row-major.
using BlockScorer = std::function<void(const int32_t* users, int n, float* out)>;

struct RankOptions {
  int k = 10;
  int block = 256;  // users per block
  int threads = 1;
  const Csr* exclude = nullptr;        // user -> items never recommended (train items)
  const Csr* exclude_extra = nullptr;  // a second exclusion (validation items when testing)
};

// Called once per user (from worker threads; idx is the position in `users`). `scores` is that
// user's row after masking (excluded items = -inf); `top` holds the top-k items, best first,
// ties broken by smaller item id.
using RankVisitor = std::function<void(int64_t idx, int32_t user, const float* scores, const int32_t* top, int ntop)>;

void rank_users(const std::vector<int32_t>& users, int32_t n_items, const BlockScorer& scorer, const RankOptions& o,
                const RankVisitor& visit);

// Top-k of one score row (ties: smaller index first); -inf entries are never returned.
// Returns how many were written (< k when fewer finite scores exist).
int topk_row(const float* scores, int32_t n, int k, int32_t* out);

// Scales each of `rows` rows of m (row-major, `dim` wide) to unit L2 norm; zero rows stay zero.
void normalize_rows(float* m, int64_t rows, int64_t dim);

// A scorer that gives -inf to every item whose candidates[item] is 0 (ranking within a subset of
// the catalogue, e.g. cold items). `candidates` (one flag per item) must outlive the scorer.
BlockScorer restrict_to(BlockScorer inner, const std::vector<char>& candidates);

// Embedding scorer: score(u, i) by a comparator over user and item vectors, through GEMM.
enum class Similarity { Dot, Cosine, NegSqEuclidean, NegEuclidean };
// U: n_users x dim, I: n_items x dim (row-major). For cosine, pass unit-normalized rows.
void gemm_scores(const float* U, const int32_t* users, int n, const float* I, int32_t n_items, int dim, Similarity sim,
                 const float* item_sq_norms, float* out);

}  // namespace siamrec
