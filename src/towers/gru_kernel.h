// A GRU layer's forward and backward by hand (torch-free): PyTorch's equations and gate order,
//   r = s(W_ir x + b_ir + W_hr h + b_hr)      z = s(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      h' = (1 - z) * n + z * h
// batch-first, from h0 (given, or 0). Every time step is one small matrix product and one fused, vectorized loop
// over the gates; the input projections and every weight gradient are one large product each.
// LibTorch 1.13 runs a step as about a dozen operators forward and two dozen backward, each with
// its own allocation and autograd node, which at GRU4Rec's sizes costs more than the arithmetic.
#pragma once
#include <cstdint>

namespace siamrec {

struct GruShape {
  int64_t batch = 0, steps = 0, in = 0, hidden = 0;
  // Optional [batch, steps]: non-zero where a new sequence starts within a row (packed rows): the
  // state before it is h0 = 0 again, and no gradient flows back across it.
  const uint8_t* reset = nullptr;
  // Optional [batch, hidden]: the state before step 0 (a carried state: session-parallel
  // mini-batches), a constant to the backward pass; null: zeros. A reset at step 0 overrides it.
  const float* h0 = nullptr;
};

// Weights in LibTorch's layout: w_ih [3H, in], w_hh [3H, H], b_ih [3H], b_hh [3H] (rows r, z, n).
struct GruWeights {
  const float* w_ih = nullptr;
  const float* w_hh = nullptr;
  const float* b_ih = nullptr;
  const float* b_hh = nullptr;
};

// What the backward pass reads, filled by the forward pass (each time-major [steps, batch, H],
// states [steps + 1, batch, H] with states[0] = h0). Null pointers: inference, nothing kept.
struct GruSaved {
  float* states = nullptr;
  float* r = nullptr;
  float* z = nullptr;
  float* n = nullptr;
  float* hn = nullptr;  // W_hn h + b_hn
};

// x [batch, steps, in] -> y [batch, steps, H].
void gru_forward(const GruShape& s, const GruWeights& w, const float* x, float* y, const GruSaved& keep);
// The same from the input projections gi [batch, steps, 3H] = x W_ih^T (no bias) computed by the
// caller (e.g. gathered from a table's projection when x are rows of an embedding table).
void gru_forward_gates(const GruShape& s, const GruWeights& w, const float* gi, float* y, const GruSaved& keep);

// dy [batch, steps, H] -> dx [batch, steps, in] and the weight gradients (overwritten, in the
// weights' layout). Any output pointer may be null (not wanted).
struct GruGrads {
  float* dx = nullptr;
  float* dw_ih = nullptr;
  float* dw_hh = nullptr;
  float* db_ih = nullptr;
  float* db_hh = nullptr;
  float* dgi = nullptr;  // [batch, steps, 3H]: the input projections' gradient (for a caller that
                         // derives dx and dW_ih itself; then x may be null)
};
void gru_backward(const GruShape& s, const GruWeights& w, const float* x, const float* dy, const GruSaved& saved,
                  const GruGrads& g);

}  // namespace siamrec
