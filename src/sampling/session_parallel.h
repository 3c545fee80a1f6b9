// GRU4Rec's session-parallel mini-batches (Hidasi et al., ICLR 2016, section 3.1.1), over users'
// time-ordered histories: `lanes` rows, each reading one history after another in a shuffled user
// order; mini-batch b holds the next `steps` inputs of every lane that still has some. A lane's
// recurrent state carries over from its previous mini-batch until its next history starts (a
// reset), so a history is read whole, however long, with the gradient reaching back `steps` inputs
// at most (truncated backpropagation through time; GRU4Rec's own is 1 step).
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace siamrec {

struct SessionChunk {
  int64_t steps = 0;           // K
  std::vector<int64_t> lanes;  // [R]: the lane each row continues (lanes without inputs left are dropped)
  std::vector<int64_t> seq;    // [R, K] input items; 0 after a lane's last history ends
  std::vector<uint8_t> reset;  // [R, K] 1 where a history starts (its state before is 0)
  std::vector<int64_t> flat;   // per training position: r * K + t
  std::vector<int64_t> user;   // its user
  std::vector<int64_t> next;   // the item it predicts (the input's successor in her history)
  int64_t rows() const { return static_cast<int64_t>(lanes.size()); }
};

// One epoch's mini-batches. Users with fewer than two items have nothing to predict and are left
// out; `seed` orders the users. Every transition (item t -> item t+1) of every history appears
// exactly once.
std::vector<SessionChunk> session_chunks(const Csr& histories, int64_t lanes, int64_t steps, uint64_t seed);

}  // namespace siamrec
