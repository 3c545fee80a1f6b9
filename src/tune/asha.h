// Asynchronous successive halving (ASHA; Li et al. 2020) over epoch checkpoints (tune.pruner asha):
// rungs at epochs r, r*eta, r*eta^2, ... (r = tune.asha_min_epochs, eta = tune.asha_eta). A trial
// that reaches a rung goes on only if its validation value there is among the best 1/eta of the
// values recorded at that rung so far (itself included); otherwise it is pruned. The first trials
// at a rung always go on (there is nothing to compare with until eta values are there).
#pragma once
#include <map>
#include <vector>

namespace siamrec::tune {

class Asha {
 public:
  Asha(int min_epochs, int eta) : min_epochs_(min_epochs), eta_(eta) {}
  // Called after a validated epoch; true = continue, false = prune. Records the value.
  bool report(int epoch, double value);
  // The rung an epoch is (0-based), or -1 when it is none.
  int rung_of(int epoch) const;

 private:
  int min_epochs_, eta_;
  std::map<int, std::vector<double>> rungs_;
};

}  // namespace siamrec::tune
