#include "sampling/session_parallel.h"

#include <algorithm>
#include <random>

#include "util/error.h"

namespace siamrec {

std::vector<SessionChunk> session_chunks(const Csr& S, int64_t lanes, int64_t steps, uint64_t seed) {
  if (lanes < 1 || steps < 1)
    throw Error(fmt::format("session-parallel mini-batches need >= 1 lane and step (got {} and {})", lanes, steps));
  std::vector<int32_t> users;
  for (int32_t u = 0; u < S.rows(); ++u)
    if (S.end(u) - S.begin(u) >= 2) users.push_back(u);
  std::mt19937_64 rng(seed);
  for (size_t k = users.size(); k > 1; --k) std::swap(users[k - 1], users[rng() % k]);
  // Lane l reads history user[l] (-1: none left) at position at[l] (an index into S.indices);
  // fresh[l]: its next input is the history's first (the state before it is 0).
  std::vector<int32_t> user(static_cast<size_t>(lanes), -1);
  std::vector<int64_t> at(static_cast<size_t>(lanes), 0);
  std::vector<uint8_t> fresh(static_cast<size_t>(lanes), 0);
  size_t taken = 0;
  // Gives lane l an input with a successor: the next position of its history, else the next
  // history (every listed history has >= 2 items), else none.
  auto advance = [&](size_t l) {
    if (user[l] >= 0 && at[l] + 1 < S.end(user[l])) return;
    if (taken == users.size()) {
      user[l] = -1;
      return;
    }
    user[l] = users[taken++];
    at[l] = S.begin(user[l]);
    fresh[l] = 1;
  };
  for (size_t l = 0; l < user.size(); ++l) advance(l);
  std::vector<SessionChunk> out;
  for (;;) {
    SessionChunk c;
    c.steps = steps;
    for (size_t l = 0; l < user.size(); ++l) {
      if (user[l] < 0) continue;
      const int64_t r = c.rows();
      c.lanes.push_back(static_cast<int64_t>(l));
      c.seq.resize(static_cast<size_t>((r + 1) * steps), 0);
      c.reset.resize(static_cast<size_t>((r + 1) * steps), 0);
      for (int64_t t = 0; t < steps && user[l] >= 0; ++t) {
        if (fresh[l]) c.reset[r * steps + t] = 1, fresh[l] = 0;
        c.seq[r * steps + t] = S.indices[at[l]];
        c.flat.push_back(r * steps + t);
        c.user.push_back(user[l]);
        c.next.push_back(S.indices[at[l] + 1]);
        ++at[l];
        advance(l);
      }
    }
    if (c.lanes.empty()) break;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace siamrec
