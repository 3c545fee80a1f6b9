// The standard validation metric for early stopping: full ranking of the validation items with
// the training items excluded, through the same evaluator as the test (one code path). Injected
// into FitData by tasks/ and the public API, so train/ and models/ never include eval/.
#pragma once
#include "train/fit_data.h"

namespace siamrec {

// "ndcg@10" and the like: any ranking metric of the evaluator, K after the '@' (default 10).
Validator ranking_validator();

}  // namespace siamrec
