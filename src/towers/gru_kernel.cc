// GRU forward/backward by hand: see gru_kernel.h. Compiled -O3 (CMakeLists.txt): the gate loops
// vectorize, exp included (a Cephes-style polynomial, relative error about 1e-7).
#include "towers/gru_kernel.h"

#include <cblas.h>
#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace siamrec {

namespace {

inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  return e * __builtin_bit_cast(float, bits);
}
inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline float tanh_approx(float x) { return 2.0f / (1.0f + exp_approx(-2.0f * x)) - 1.0f; }

// The products go through oneDNN's sgemm (row-major, as cblas): it chooses its kernels for the CPU
// it runs on (AVX-512 where there is one) whatever OpenBLAS was told; measured 2x OpenBLAS's AVX2
// kernels at these sizes (docs/towers.md).
void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc, float beta) {
  if (dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc) != dnnl_success)
    cblas_sgemm(CblasRowMajor, ta == 'T' ? CblasTrans : CblasNoTrans, tb == 'T' ? CblasTrans : CblasNoTrans,
                static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b,
                static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}
// c [m, n] = a [m, k] b^T (b [n, k]) (+ c when accumulate)
void gemm_nt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate) {
  gemm('N', 'T', m, n, k, a, lda, b, ldb, c, ldc, accumulate ? 1.0f : 0.0f);
}
// c [m, n] = a [m, k] b (b [k, n])
void gemm_nn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate) {
  gemm('N', 'N', m, n, k, a, lda, b, ldb, c, ldc, accumulate ? 1.0f : 0.0f);
}
// c [m, n] = a^T b (a [k, m], b [k, n])
void gemm_tn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc) {
  gemm('T', 'N', m, n, k, a, lda, b, ldb, c, ldc, 0.0f);
}

// Column sums of a [rows, cols] into out [cols].
void column_sums(const float* a, int64_t rows, int64_t cols, float* out) {
  std::fill(out, out + cols, 0.0f);
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = a + i * cols;
    for (int64_t j = 0; j < cols; ++j) out[j] += row[j];
  }
}

// One step of one history: the gates from its input and recurrent projections (gi, gh: r, z, n
// blocks of H), the new state into hc and y, and (rs non-null) what the backward pass reads.
void gate_step(const float* __restrict gi, const float* __restrict gh, const float* __restrict brz,
               const float* __restrict bin, const float* __restrict bhn, const float* __restrict hp,
               float* __restrict hc, float* __restrict y, float* __restrict rs, float* __restrict zs,
               float* __restrict ns, float* __restrict hns, int64_t H) {
  if (rs) {
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      const float r = sigmoid(gi[j] + gh[j] + brz[j]);
      const float z = sigmoid(gi[H + j] + gh[H + j] + brz[H + j]);
      const float hn = gh[2 * H + j] + bhn[j];
      const float n = tanh_approx(gi[2 * H + j] + bin[j] + r * hn);
      const float h = n + z * (hp[j] - n);
      hc[j] = h;
      y[j] = h;
      rs[j] = r;
      zs[j] = z;
      ns[j] = n;
      hns[j] = hn;
    }
  } else {
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      const float r = sigmoid(gi[j] + gh[j] + brz[j]);
      const float z = sigmoid(gi[H + j] + gh[H + j] + brz[H + j]);
      const float n = tanh_approx(gi[2 * H + j] + bin[j] + r * (gh[2 * H + j] + bhn[j]));
      const float h = n + z * (hp[j] - n);
      hc[j] = h;
      y[j] = h;
    }
  }
}

// The backward step of one history: dh (in: the gradient reaching h(t) from later steps; out: the
// direct part of h(t-1)'s), dy its output's gradient; the pre-activation gradients into dgi, dgh.
void gate_back(const float* __restrict r, const float* __restrict z, const float* __restrict n,
               const float* __restrict hn, const float* __restrict hp, const float* __restrict dy, float* __restrict dh,
               float* __restrict dgi, float* __restrict dgh, int64_t H) {
#pragma GCC ivdep
  for (int64_t j = 0; j < H; ++j) {
    const float d = dh[j] + dy[j];
    const float dn = d * (1.0f - z[j]) * (1.0f - n[j] * n[j]);
    const float dz = d * (hp[j] - n[j]) * z[j] * (1.0f - z[j]);
    const float dr = dn * hn[j] * r[j] * (1.0f - r[j]);
    dgi[j] = dr;
    dgi[H + j] = dz;
    dgi[2 * H + j] = dn;
    dgh[j] = dr;
    dgh[H + j] = dz;
    dgh[2 * H + j] = dn * r[j];
    dh[j] = d * z[j];
  }
}

}  // namespace

void gru_forward(const GruShape& s, const GruWeights& w, const float* x, float* y, const GruSaved& keep) {
  const int64_t B = s.batch, L = s.steps, G = 3 * s.hidden;
  if (B == 0 || L == 0) return;
  // Input projections of every step at once: gi [B, L, 3H] (rows in x's order).
  std::unique_ptr<float[]> gi_buf(new float[static_cast<size_t>(B * L * G)]);  // written whole by the product
  gemm_nt(B * L, G, s.in, x, s.in, w.w_ih, s.in, gi_buf.get(), G, false);
  gru_forward_gates(s, w, gi_buf.get(), y, keep);
}

void gru_forward_gates(const GruShape& s, const GruWeights& w, const float* gi, float* y, const GruSaved& keep) {
  const int64_t B = s.batch, L = s.steps, H = s.hidden, G = 3 * H;
  if (B == 0 || L == 0) return;
  std::vector<float> bias_rz(static_cast<size_t>(2 * H));
  for (int64_t j = 0; j < 2 * H; ++j) bias_rz[j] = w.b_ih[j] + w.b_hh[j];
  std::vector<float> gh(static_cast<size_t>(B * G));
  // Without kept states, two [B, H] buffers alternate as h(t-1) and h(t).
  std::vector<float> scratch(keep.states ? 0 : static_cast<size_t>(2 * B * H), 0.0f);
  float* h0 = keep.states ? keep.states : scratch.data();
  if (s.h0)
    std::copy(s.h0, s.h0 + B * H, h0);
  else
    std::fill(h0, h0 + B * H, 0.0f);
  const float* brz = bias_rz.data();
  const float* bin = w.b_ih + 2 * H;
  const float* bhn = w.b_hh + 2 * H;
  for (int64_t t = 0; t < L; ++t) {
    float* hp = keep.states ? keep.states + t * B * H : scratch.data() + (t % 2) * B * H;
    float* hc = keep.states ? keep.states + (t + 1) * B * H : scratch.data() + ((t + 1) % 2) * B * H;
    if (t == 0 && !s.h0) {
      std::fill(gh.begin(), gh.end(), 0.0f);
    } else {
      if (s.reset)  // a sequence starting here reads h0 = 0 (kept so: dW_hh reads these states)
        for (int64_t b = 0; b < B; ++b)
          if (s.reset[b * L + t]) std::fill(hp + b * H, hp + (b + 1) * H, 0.0f);
      gemm_nt(B, G, H, hp, H, w.w_hh, H, gh.data(), G, false);
    }
    for (int64_t b = 0; b < B; ++b) {
      const int64_t o = (t * B + b) * H;
      gate_step(gi + (b * L + t) * G, gh.data() + b * G, brz, bin, bhn, hp + b * H, hc + b * H, y + (b * L + t) * H,
                keep.r ? keep.r + o : nullptr, keep.z ? keep.z + o : nullptr, keep.n ? keep.n + o : nullptr,
                keep.hn ? keep.hn + o : nullptr, H);
    }
  }
}

void gru_backward(const GruShape& s, const GruWeights& w, const float* x, const float* dy, const GruSaved& saved,
                  const GruGrads& g) {
  const int64_t B = s.batch, L = s.steps, H = s.hidden, G = 3 * H;
  if (B == 0 || L == 0) {
    if (g.dw_ih) std::fill(g.dw_ih, g.dw_ih + G * s.in, 0.0f);
    if (g.dw_hh) std::fill(g.dw_hh, g.dw_hh + G * H, 0.0f);
    if (g.db_ih) std::fill(g.db_ih, g.db_ih + G, 0.0f);
    if (g.db_hh) std::fill(g.db_hh, g.db_hh + G, 0.0f);
    return;
  }
  // Gradients of the pre-activations: dgi [B, L, 3H] (x's order) for the input side, dgh
  // [L, B, 3H] (the states' order) for the recurrent side (they differ in the n gate: r dn).
  // (Written whole by the steps: not zeroed.)
  std::unique_ptr<float[]> dgi_buf(g.dgi ? nullptr : new float[static_cast<size_t>(B * L * G)]);
  std::unique_ptr<float[]> dgh_buf(new float[static_cast<size_t>(L * B * G)]);
  float* dgi = g.dgi ? g.dgi : dgi_buf.get();
  float* dgh = dgh_buf.get();
  std::vector<float> dh(static_cast<size_t>(B * H), 0.0f);
  for (int64_t t = L - 1; t >= 0; --t) {
    const float* hp = saved.states + t * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t o = (t * B + b) * H;
      gate_back(saved.r + o, saved.z + o, saved.n + o, saved.hn + o, hp + b * H, dy + (b * L + t) * H,
                dh.data() + b * H, dgi + (b * L + t) * G, dgh + (t * B + b) * G, H);
    }
    // dh(t-1) += dgh(t) W_hh  (h0 is a constant: no gradient wanted; a given h0 still enters
    // dW_hh through states[0])
    if (t > 0) {
      gemm_nn(B, H, G, dgh + t * B * G, G, w.w_hh, H, dh.data(), H, true);
      if (s.reset)  // nothing flows back across the start of a sequence
        for (int64_t b = 0; b < B; ++b)
          if (s.reset[b * L + t]) std::fill(dh.data() + b * H, dh.data() + (b + 1) * H, 0.0f);
    }
  }
  if (g.dx) gemm_nn(B * L, s.in, G, dgi, G, w.w_ih, s.in, g.dx, s.in, false);
  if (g.dw_ih) gemm_tn(G, s.in, B * L, dgi, G, x, s.in, g.dw_ih, s.in);
  if (g.dw_hh) gemm_tn(G, H, L * B, dgh, G, saved.states, H, g.dw_hh, H);
  if (g.db_ih) column_sums(dgi, B * L, G, g.db_ih);
  if (g.db_hh) column_sums(dgh, L * B, G, g.db_hh);
}

}  // namespace siamrec
